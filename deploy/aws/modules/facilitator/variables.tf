# What an operator sets. Every secret comes from Secrets Manager by ARN: no secret value
# is ever a Terraform variable, so none lands in the state or a plan.

variable "name" {
  description = "Prefix of every resource name (facilitator-production)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name: 2 to 24 characters, lower-case letters, digits and '-', starting with a letter (target group names have a 32-character limit)."
  }
}

variable "vpc_id" {
  description = "VPC of the load balancer and the tasks."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the internet-facing load balancer (two availability zones at least)."
  type        = list(string)
  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "public_subnet_ids: an ALB needs subnets in two availability zones at least."
  }
}

variable "private_subnet_ids" {
  description = "Subnets of the Fargate tasks (and of the rollback function when it calls the admin API); they need a route to the RPC providers and to ECR."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "ingress_cidrs" {
  description = "Who may reach the HTTPS listener."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "test_listener_port" {
  description = "HTTPS port of the test listener, which forwards to the candidate (not stable) service only: `x402-deploy verify` runs against it before any traffic shifts."
  type        = number
  default     = 8443
}

variable "test_listener_cidrs" {
  description = "Who may reach the test listener (operators, CI)."
  type        = list(string)
  default     = []
}

variable "image_repository" {
  description = "ECR repository URL of the image (the `repository_url` output of aws_ecr_repository), without a tag."
  type        = string
}

variable "blue_image_tag" {
  description = "Image tag the blue service runs."
  type        = string
}

variable "green_image_tag" {
  description = "Image tag the green service runs (the next release while blue is stable)."
  type        = string
}

variable "stable_color" {
  description = "The service that keeps or gets all traffic on a rollback (the rollback function, instant-rollback.sh); the other is the candidate behind the test listener."
  type        = string
  default     = "blue"
  validation {
    condition     = contains(["blue", "green"], var.stable_color)
    error_message = "stable_color: blue or green."
  }
}

variable "blue_weight" {
  description = "Share (percent) of new requests the blue target group receives. shift-traffic.sh changes it at run time; set it to what the script left before the next apply, or the apply moves traffic back."
  type        = number
  default     = 100
  validation {
    condition     = var.blue_weight >= 0 && var.blue_weight <= 100 && floor(var.blue_weight) == var.blue_weight
    error_message = "blue_weight: a whole number from 0 to 100."
  }
}

variable "green_weight" {
  description = "Share (percent) of new requests the green target group receives; blue_weight + green_weight must be 100."
  type        = number
  default     = 0
  validation {
    condition     = var.green_weight >= 0 && var.green_weight <= 100 && floor(var.green_weight) == var.green_weight
    error_message = "green_weight: a whole number from 0 to 100."
  }
}

variable "blue_desired_count" {
  description = "Tasks of the blue service."
  type        = number
  default     = 2
}

variable "green_desired_count" {
  description = "Tasks of the green service (0 between releases)."
  type        = number
  default     = 0
}

variable "cpu" {
  description = "Fargate task CPU units."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Fargate task memory (MiB)."
  type        = number
  default     = 1024
}

variable "x402_version_support" {
  description = "X402_VERSION_SUPPORT of every task: v1,v2 | v1 | v2."
  type        = string
  default     = "v1,v2"
  validation {
    condition     = contains(["v1,v2", "v1", "v2"], var.x402_version_support)
    error_message = "x402_version_support: v1,v2, v1 or v2."
  }
}

variable "environment" {
  description = "Further plain settings of the tasks (flags such as V2_SETTLE_ENABLED, NONCE_FETCH_MODE, BREAKER_THRESHOLD; docs/configuration.md). Secrets go in `secrets`."
  type        = map(string)
  default     = {}
  validation {
    condition = length(setintersection(keys(var.environment), [
      "DATABASE_URL", "EVM_PRIVATE_KEY", "SVM_PRIVATE_KEY", "ADMIN_TOKEN"
    ])) == 0
    error_message = "environment: DATABASE_URL, private keys and ADMIN_TOKEN are secrets; give them in `secrets` (Secrets Manager ARNs)."
  }
}

variable "secrets" {
  description = "Environment variable name => Secrets Manager secret ARN (or ARN:json-key::), injected by ECS at start: DATABASE_URL (required: two services share one PostgreSQL ledger), EVM_PRIVATE_KEY, SVM_PRIVATE_KEY, ADMIN_TOKEN and every RPC_URL_* (RPC URLs carry API keys)."
  type        = map(string)
  validation {
    condition     = contains(keys(var.secrets), "DATABASE_URL")
    error_message = "secrets: DATABASE_URL is required; blue and green settle with the same keys and must share one PostgreSQL ledger."
  }
}

variable "shutdown_grace_seconds" {
  description = "SHUTDOWN_GRACE_SECONDS: after SIGTERM the task fails readiness and keeps serving this long."
  type        = number
  default     = 5
}

variable "drain_timeout_seconds" {
  description = "DRAIN_TIMEOUT_SECONDS: then in-flight settlements may take this long. Fargate stops a container at most 120 s after SIGTERM, so grace + drain + 5 must not exceed 120."
  type        = number
  default     = 110
}

variable "log_retention_days" {
  description = "Retention of the log group (the request lines are the audit trail of verify and settle)."
  type        = number
  default     = 365
}

variable "access_logs_bucket" {
  description = "S3 bucket of the load balancer's access logs; empty: none."
  type        = string
  default     = ""
}

variable "waf_acl_arn" {
  description = "WAFv2 web ACL to associate with the load balancer; empty: none."
  type        = string
  default     = ""
}

variable "metric_namespace" {
  description = "CloudWatch namespace of the log-based metrics."
  type        = string
  default     = "X402/Facilitator"
}

variable "alarm_topic_arns" {
  description = "SNS topics told about every alarm (pager, chat)."
  type        = list(string)
  default     = []
}

variable "failure_spike_threshold" {
  description = "Facilitator-side v2 settlement failures within failure_spike_period_seconds that roll back."
  type        = number
  default     = 5
}

variable "failure_spike_period_seconds" {
  description = "Window of the failure spike alarm."
  type        = number
  default     = 120
}

variable "failure_rate_percent" {
  description = "Share of v2 settlements failing on our side, over two 5-minute periods, that rolls back."
  type        = number
  default     = 5
}

variable "caip2_error_threshold" {
  description = "Non-CAIP-2 network ids in 10 minutes that raise the parse error alarm."
  type        = number
  default     = 10
}

variable "http_5xx_rate_percent" {
  description = "Share of requests answered 5xx (by the tasks or the load balancer) over 5 minutes that alarms."
  type        = number
  default     = 1
}

variable "p99_latency_seconds" {
  description = "p99 target response time over 10 minutes that alarms (a settle waits for its receipt)."
  type        = number
  default     = 10
}

variable "v1_drop_band_width" {
  description = "Width (standard deviations) of the anomaly band under which hourly v1 traffic counts as a sudden drop."
  type        = number
  default     = 3
}

variable "rollback_enabled" {
  description = "ENABLED of the rollback function at creation; switch it off for planned work with `aws lambda update-function-configuration` (docs/deployment.md)."
  type        = bool
  default     = true
}

variable "rollback_admin_url" {
  description = "Base URL of one instance's admin API, reachable from private_subnet_ids (an internal load balancer or a Cloud Map name in front of ADMIN_ADDR). Empty: the function moves traffic only and leaves v2 settle as it is."
  type        = string
  default     = ""
}

variable "admin_port" {
  description = "ADMIN_ADDR port of the tasks whenever secrets has ADMIN_TOKEN (the admin API is never on the load balancer's port); the rollback function's security group may reach it."
  type        = number
  default     = 9090
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
