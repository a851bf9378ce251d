# What the scripts, the runbook and x402-deploy need (docs/deployment.md).

output "alb_dns_name" {
  description = "Point the service's DNS name at this (CNAME or alias)."
  value       = aws_lb.this.dns_name
}

output "listener_arn" {
  description = "X402_LISTENER_ARN of shift-traffic.sh and instant-rollback.sh."
  value       = aws_lb_listener.https.arn
}

output "weighted_rule_arn" {
  description = "The rule whose weights move traffic."
  value       = aws_lb_listener_rule.weighted.arn
}

output "target_group_arns" {
  description = "X402_BLUE_TG_ARN and X402_GREEN_TG_ARN of the scripts."
  value       = { for c in local.colors : c => aws_lb_target_group.color[c].arn }
}

output "test_listener_url" {
  description = "The candidate service alone: run `x402-deploy verify` against it before shifting."
  value       = "https://${aws_lb.this.dns_name}:${var.test_listener_port}"
}

output "cluster_name" {
  description = "ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_names" {
  description = "ECS service per color."
  value       = { for c in local.colors : c => aws_ecs_service.color[c].name }
}

output "log_group_name" {
  description = "The tasks' JSON logs, which the metric filters read."
  value       = aws_cloudwatch_log_group.tasks.name
}

output "rollback_function_name" {
  description = "Set ENABLED=false on it for planned work."
  value       = aws_lambda_function.rollback.function_name
}

output "kms_key_arn" {
  description = "The module's key: give it to further alarm topics (kms_master_key_id) so alarms can publish to them."
  value       = aws_kms_key.this.arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
