# Metrics from what the binary logs (one JSON line per request; metric-filters.json is the
# one table, tested against the real binary), and the seeds' alarms. Request counts,
# 5xx, latency and task health come from the load balancer's own metrics.

locals {
  metric_filters = jsondecode(file("${path.module}/metric-filters.json")).filters
  alb_dimensions = { LoadBalancer = aws_lb.this.arn_suffix }
  notify         = var.alarm_topic_arns
  rollback       = concat([aws_sns_topic.rollback.arn], var.alarm_topic_arns)
}

resource "aws_cloudwatch_log_metric_filter" "this" {
  for_each       = local.metric_filters
  name           = "${var.name}-${each.key}"
  log_group_name = aws_cloudwatch_log_group.tasks.name
  pattern        = each.value.pattern
  metric_transformation {
    name       = each.value.metric
    namespace  = var.metric_namespace
    value      = "1"
    unit       = "Count"
    dimensions = length(each.value.dimensions) == 0 ? null : each.value.dimensions
    # A metric with dimensions takes no default value (CloudWatch refuses both).
    default_value = length(each.value.dimensions) == 0 ? "0" : null
  }
}

resource "aws_sns_topic" "rollback" {
  name              = "${var.name}-rollback"
  kms_master_key_id = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_cloudwatch_metric_alarm" "caip2_parse_errors" {
  alarm_name          = "${var.name}-caip2-parsing-errors-high"
  alarm_description   = "v2 requests with network ids that are not CAIP-2 (client versions sending v1 names in v2). Log message 'CAIP-2 parsing failed'."
  namespace           = var.metric_namespace
  metric_name         = "Caip2ParseErrors"
  statistic           = "Sum"
  period              = 600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.caip2_error_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.notify
  ok_actions          = local.notify
  depends_on          = [aws_cloudwatch_log_metric_filter.this]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "settlement_failure_spike" {
  alarm_name          = "${var.name}-v2-settlement-failure-spike"
  alarm_description   = "Facilitator-side v2 settlement failures (RPC, gas, ledger, reverts we caused; never payer refusals), each settlement once. Rolls back."
  namespace           = var.metric_namespace
  metric_name         = "V2SettlementFailures"
  statistic           = "Sum"
  period              = var.failure_spike_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.failure_spike_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.rollback
  ok_actions          = local.notify
  depends_on          = [aws_cloudwatch_log_metric_filter.this]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "settlement_failure_rate" {
  alarm_name          = "${var.name}-v2-settlement-failure-rate-high"
  alarm_description   = "Share (percent) of v2 settlements failing on our side. Rolls back."
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.failure_rate_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.rollback
  ok_actions          = local.notify
  metric_query {
    id          = "rate"
    expression  = "IF(settlements > 0, 100 * failures / settlements, 0)"
    label       = "v2 facilitator-side failure rate (%)"
    return_data = true
  }
  metric_query {
    id = "failures"
    metric {
      namespace   = var.metric_namespace
      metric_name = "V2SettlementFailures"
      stat        = "Sum"
      period      = 300
    }
  }
  metric_query {
    id = "settlements"
    metric {
      namespace   = var.metric_namespace
      metric_name = "V2Settlements"
      stat        = "Sum"
      period      = 300
    }
  }
  depends_on = [aws_cloudwatch_log_metric_filter.this]
  tags       = var.tags
}

resource "aws_cloudwatch_metric_alarm" "v1_traffic_drop" {
  count               = strcontains(var.x402_version_support, "v1") ? 1 : 0
  alarm_name          = "${var.name}-x402-v1-traffic-sudden-drop"
  alarm_description   = "Hourly v1 requests fell under the band CloudWatch learned: migration progress, or clients failing."
  evaluation_periods  = 1
  comparison_operator = "LessThanLowerThreshold"
  threshold_metric_id = "band"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.notify
  ok_actions          = local.notify
  metric_query {
    id          = "v1"
    return_data = true
    metric {
      namespace   = var.metric_namespace
      metric_name = "V1Requests"
      stat        = "Sum"
      period      = 3600
    }
  }
  metric_query {
    id          = "band"
    expression  = "ANOMALY_DETECTION_BAND(v1, ${var.v1_drop_band_width})"
    label       = "expected v1 requests"
    return_data = true
  }
  depends_on = [aws_cloudwatch_log_metric_filter.this]
  tags       = var.tags
}

resource "aws_cloudwatch_metric_alarm" "http_5xx_rate" {
  alarm_name          = "${var.name}-5xx-rate-high"
  alarm_description   = "Share (percent) of requests answered 5xx by the tasks or the load balancer."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.http_5xx_rate_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.notify
  ok_actions          = local.notify
  metric_query {
    id          = "rate"
    expression  = "IF(requests > 0, 100 * (target5xx + elb5xx) / requests, 0)"
    label       = "5xx (%)"
    return_data = true
  }
  dynamic "metric_query" {
    for_each = {
      requests  = "RequestCount"
      target5xx = "HTTPCode_Target_5XX_Count"
      elb5xx    = "HTTPCode_ELB_5XX_Count"
    }
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/ApplicationELB"
        metric_name = metric_query.value
        dimensions  = local.alb_dimensions
        stat        = "Sum"
        period      = 300
      }
    }
  }
  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "p99_latency" {
  alarm_name          = "${var.name}-p99-latency-high"
  alarm_description   = "p99 time the tasks take to answer (a settle waits for its receipt; RPC latency)."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = local.alb_dimensions
  extended_statistic  = "p99"
  period              = 600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.p99_latency_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.notify
  ok_actions          = local.notify
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_tasks" {
  for_each            = toset(local.colors)
  alarm_name          = "${var.name}-${each.key}-unhealthy-tasks"
  alarm_description   = "Tasks of the ${each.key} service failing /health/ready for 3 minutes."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = merge(local.alb_dimensions, { TargetGroup = aws_lb_target_group.color[each.key].arn_suffix })
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.notify
  ok_actions          = local.notify
  tags                = var.tags
}
