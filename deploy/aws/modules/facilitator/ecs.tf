# Two Fargate services (blue, green) of one task shape; each runs its own image tag.

locals {
  # With a token the admin API listens on a port of its own, never behind the public listener.
  admin_addr = contains(keys(var.secrets), "ADMIN_TOKEN") ? { ADMIN_ADDR = "0.0.0.0:${var.admin_port}" } : {}
  plain_environment = merge(var.environment, local.admin_addr, {
    HOST                   = "0.0.0.0"
    PORT                   = "8080"
    LOG_FORMAT             = "json"
    X402_VERSION_SUPPORT   = var.x402_version_support
    SHUTDOWN_GRACE_SECONDS = tostring(var.shutdown_grace_seconds)
    DRAIN_TIMEOUT_SECONDS  = tostring(var.drain_timeout_seconds)
  })
  image_tags = { blue = var.blue_image_tag, green = var.green_image_tag }
  desired    = { blue = var.blue_desired_count, green = var.green_desired_count }
  # Fargate sends SIGKILL at most 120 s after SIGTERM.
  stop_timeout = min(120, var.shutdown_grace_seconds + var.drain_timeout_seconds + 5)
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = var.tags
}

resource "aws_cloudwatch_log_group" "tasks" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_ecs_task_definition" "color" {
  for_each                 = toset(local.colors)
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions = jsonencode([{
    name                   = "facilitator"
    image                  = "${var.image_repository}:${local.image_tags[each.key]}"
    essential              = true
    readonlyRootFilesystem = true
    user                   = "10402"
    portMappings           = [{ containerPort = 8080, protocol = "tcp" }]
    stopTimeout            = local.stop_timeout
    environment = [for k in sort(keys(local.plain_environment)) : {
      name = k, value = local.plain_environment[k]
    }]
    secrets = [for k in sort(keys(var.secrets)) : { name = k, valueFrom = var.secrets[k] }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.tasks.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = each.key
      }
    }
  }])
  tags = merge(var.tags, { "x402:color" = each.key })
  lifecycle {
    precondition {
      condition     = var.shutdown_grace_seconds + var.drain_timeout_seconds + 5 <= 120
      error_message = "shutdown_grace_seconds + drain_timeout_seconds + 5 must not exceed 120: Fargate kills a container 120 s after SIGTERM at most, and a settlement cut short is finished only by the reconciler."
    }
    precondition {
      condition     = !local.calls_admin || contains(keys(var.secrets), "ADMIN_TOKEN")
      error_message = "rollback_admin_url needs secrets[\"ADMIN_TOKEN\"]: the admin API exists only with a token."
    }
  }
}

resource "aws_ecs_service" "color" {
  for_each                           = toset(local.colors)
  name                               = "${var.name}-${each.key}"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.color[each.key].arn
  desired_count                      = local.desired[each.key]
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.color[each.key].arn
    container_name   = "facilitator"
    container_port   = 8080
  }
  depends_on = [aws_lb_listener_rule.weighted, aws_lb_listener.test]
  tags       = merge(var.tags, { "x402:color" = each.key })
}

resource "aws_security_group" "tasks" {
  name        = "${var.name}-tasks"
  description = "x402 facilitator tasks"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "HTTP from the load balancer"
  referenced_security_group_id = aws_security_group.alb.id
  from_port                    = 8080
  to_port                      = 8080
  ip_protocol                  = "tcp"
}

resource "aws_vpc_security_group_ingress_rule" "tasks_admin_from_rollback" {
  count                        = local.calls_admin ? 1 : 0
  security_group_id            = aws_security_group.tasks.id
  description                  = "admin API from the rollback function"
  referenced_security_group_id = aws_security_group.rollback[0].id
  from_port                    = var.admin_port
  to_port                      = var.admin_port
  ip_protocol                  = "tcp"
}

# RPC providers, ECR, Secrets Manager and PostgreSQL are reached over HTTPS or the
# database port; both are allowed out.
resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "RPC providers, ECR, Secrets Manager"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "tasks_postgres" {
  security_group_id = aws_security_group.tasks.id
  description       = "the shared PostgreSQL ledger"
  cidr_ipv4         = data.aws_vpc.this.cidr_block
  from_port         = 5432
  to_port           = 5432
  ip_protocol       = "tcp"
}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_vpc" "this" {
  id = var.vpc_id
}
