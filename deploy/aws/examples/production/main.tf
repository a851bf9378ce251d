# One production facilitator: the module with its image repository and an alarm topic.
# Secrets are created beforehand (docs/deployment.md, "AWS"); only their ARNs appear here.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-2"
}

variable "vpc_id" {
  description = "VPC of the facilitator."
  type        = string
}

variable "public_subnet_ids" {
  description = "Load balancer subnets."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Task subnets."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate of the service's DNS name."
  type        = string
}

variable "blue_image_tag" {
  description = "Release the blue service runs."
  type        = string
}

variable "green_image_tag" {
  description = "Release the green service runs."
  type        = string
}

variable "blue_weight" {
  description = "Blue's share; keep it equal to what shift-traffic.sh last set."
  type        = number
  default     = 100
}

variable "green_weight" {
  description = "Green's share."
  type        = number
  default     = 0
}

variable "stable_color" {
  description = "The release rollbacks return to: blue, or green once green is promoted."
  type        = string
  default     = "blue"
}

variable "green_desired_count" {
  description = "Green tasks (0 between releases)."
  type        = number
  default     = 0
}

resource "aws_ecr_repository" "facilitator" {
  name                 = "x402-facilitator"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
  }
}

resource "aws_sns_topic" "alarms" {
  name              = "facilitator-production-alarms"
  kms_master_key_id = module.facilitator.kms_key_arn
}

data "aws_secretsmanager_secret" "facilitator" {
  for_each = toset(["database-url", "evm-private-key", "admin-token", "rpc-url-base"])
  name     = "x402/production/${each.key}"
}

module "facilitator" {
  source = "../../modules/facilitator"

  name               = "facilitator-production"
  vpc_id             = var.vpc_id
  public_subnet_ids  = var.public_subnet_ids
  private_subnet_ids = var.private_subnet_ids
  certificate_arn    = var.certificate_arn

  image_repository    = aws_ecr_repository.facilitator.repository_url
  blue_image_tag      = var.blue_image_tag
  green_image_tag     = var.green_image_tag
  blue_weight         = var.blue_weight
  green_weight        = var.green_weight
  green_desired_count = var.green_desired_count
  stable_color        = var.stable_color

  x402_version_support = "v1,v2"
  environment = {
    NONCE_FETCH_MODE  = "cached"
    V2_SETTLE_ENABLED = "true"
  }
  secrets = {
    DATABASE_URL    = data.aws_secretsmanager_secret.facilitator["database-url"].arn
    EVM_PRIVATE_KEY = data.aws_secretsmanager_secret.facilitator["evm-private-key"].arn
    ADMIN_TOKEN     = data.aws_secretsmanager_secret.facilitator["admin-token"].arn
    RPC_URL_BASE    = data.aws_secretsmanager_secret.facilitator["rpc-url-base"].arn
  }

  alarm_topic_arns    = [aws_sns_topic.alarms.arn]
  test_listener_cidrs = ["10.0.0.0/8"]
  tags                = { service = "x402-facilitator", environment = "production" }
}

output "alb_dns_name" {
  description = "Point the service's DNS name here."
  value       = module.facilitator.alb_dns_name
}

output "listener_arn" {
  description = "X402_LISTENER_ARN."
  value       = module.facilitator.listener_arn
}

output "blue_target_group_arn" {
  description = "X402_BLUE_TG_ARN."
  value       = module.facilitator.target_group_arns["blue"]
}

output "green_target_group_arn" {
  description = "X402_GREEN_TG_ARN."
  value       = module.facilitator.target_group_arns["green"]
}

output "weighted_rule_arn" {
  description = "X402_RULE_ARN: instant-rollback.sh makes one AWS call with it."
  value       = module.facilitator.weighted_rule_arn
}

output "test_listener_url" {
  description = "x402-deploy verify against this before shifting."
  value       = module.facilitator.test_listener_url
}

output "rollback_function_name" {
  description = "ENABLED=false on it for planned work."
  value       = module.facilitator.rollback_function_name
}
