# The alarm-triggered rollback: failure alarms -> SNS -> the function, which gives the
# stable service all traffic and, when configured, switches v2 settle off.

locals {
  # The function calls one instance's admin API (so runs in the VPC and reads the token).
  calls_admin = var.rollback_admin_url != ""
}

data "archive_file" "rollback" {
  type        = "zip"
  source_file = "${path.module}/lambda/auto_rollback.py"
  output_path = "${path.module}/.build/auto_rollback.zip"
}

resource "aws_security_group" "rollback" {
  count       = local.calls_admin ? 1 : 0
  name        = "${var.name}-rollback"
  description = "x402 rollback function: the admin API only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_egress_rule" "rollback_admin" {
  count                        = local.calls_admin ? 1 : 0
  security_group_id            = aws_security_group.rollback[0].id
  description                  = "admin API of the tasks"
  referenced_security_group_id = aws_security_group.tasks.id
  from_port                    = var.admin_port
  to_port                      = var.admin_port
  ip_protocol                  = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "rollback_https" {
  count             = local.calls_admin ? 1 : 0
  security_group_id = aws_security_group.rollback[0].id
  description       = "Elastic Load Balancing and Secrets Manager APIs"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_lambda_function" "rollback" {
  #checkov:skip=CKV_AWS_116:a failed run is retried by Lambda and shows in the alarm history and the function's logs; a dead-letter queue adds nothing
  #checkov:skip=CKV_AWS_272:code signing is the operator's choice; the code is this module's file
  function_name                  = "${var.name}-auto-rollback"
  role                           = aws_iam_role.rollback.arn
  runtime                        = "python3.12"
  handler                        = "auto_rollback.handler"
  filename                       = data.archive_file.rollback.output_path
  source_code_hash               = data.archive_file.rollback.output_base64sha256
  timeout                        = 30
  reserved_concurrent_executions = 1
  kms_key_arn                    = aws_kms_key.this.arn
  tracing_config {
    mode = "Active"
  }
  environment {
    variables = {
      ENABLED                 = var.rollback_enabled ? "true" : "false"
      LISTENER_RULE_ARN       = aws_lb_listener_rule.weighted.arn
      STABLE_TARGET_GROUP_ARN = aws_lb_target_group.color[var.stable_color].arn
      ADMIN_URL               = var.rollback_admin_url
      ADMIN_TOKEN_SECRET_ARN  = local.calls_admin ? var.secrets["ADMIN_TOKEN"] : ""
    }
  }
  dynamic "vpc_config" {
    for_each = local.calls_admin ? [1] : []
    content {
      subnet_ids         = var.private_subnet_ids
      security_group_ids = [aws_security_group.rollback[0].id]
    }
  }
  tags = var.tags
  lifecycle {
    # ENABLED is switched by hand for planned work (docs/deployment.md); an apply keeps it.
    ignore_changes = [environment[0].variables["ENABLED"]]
  }
}

resource "aws_lambda_permission" "rollback_from_sns" {
  statement_id  = "alarm-topic"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.rollback.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = aws_sns_topic.rollback.arn
}

resource "aws_sns_topic_subscription" "rollback" {
  topic_arn = aws_sns_topic.rollback.arn
  protocol  = "lambda"
  endpoint  = aws_lambda_function.rollback.arn
}
