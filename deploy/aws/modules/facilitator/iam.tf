# Least privilege: the task execution role reads only the configured secrets; the tasks
# themselves call no AWS API (no task role); the rollback function may change only the
# weighted rule and read only the admin token.

locals {
  # "arn:...:secret:name-AbCdEf:json-key::" names a key inside the secret arn:...:secret:name-AbCdEf.
  secret_arn_of = { for k, v in var.secrets : k => join(":", slice(split(":", v), 0, 7)) }
  secret_arns   = distinct(values(local.secret_arn_of))
}

# Who may assume each role: the ECS task agent, the Lambda service.
data "aws_iam_policy_document" "assume" {
  for_each = { execution = "ecs-tasks.amazonaws.com", rollback = "lambda.amazonaws.com" }
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [each.value]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume["execution"].json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution_managed" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.secret_arns
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-facilitator-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

resource "aws_iam_role" "rollback" {
  name               = "${var.name}-rollback"
  assume_role_policy = data.aws_iam_policy_document.assume["rollback"].json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "rollback_logs" {
  role       = aws_iam_role.rollback.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_iam_role_policy_attachment" "rollback_xray" {
  role       = aws_iam_role.rollback.name
  policy_arn = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

resource "aws_iam_role_policy_attachment" "rollback_vpc" {
  count      = local.calls_admin ? 1 : 0
  role       = aws_iam_role.rollback.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

data "aws_iam_policy_document" "rollback" {
  statement {
    sid       = "ReadRules"
    actions   = ["elasticloadbalancing:DescribeRules"]
    resources = ["*"] # Describe* calls take no resource-level permissions.
  }
  statement {
    sid       = "ReadEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }
  statement {
    sid       = "ShiftTraffic"
    actions   = ["elasticloadbalancing:ModifyRule"]
    resources = [aws_lb_listener_rule.weighted.arn]
  }
  dynamic "statement" {
    for_each = local.calls_admin ? [1] : []
    content {
      sid       = "ReadAdminToken"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.secret_arn_of["ADMIN_TOKEN"]]
    }
  }
}

resource "aws_iam_role_policy" "rollback" {
  name   = "shift-traffic-and-switch-v2-settle"
  role   = aws_iam_role.rollback.id
  policy = data.aws_iam_policy_document.rollback.json
}
