# The release dashboard: version adoption, errors, settlement success by version and
# network, the load balancer's view, and the traffic split.

locals {
  ns     = var.metric_namespace
  region = data.aws_region.current.name
  search = {
    requests    = "SEARCH('{${local.ns},Endpoint,Outcome,Version} MetricName=\"Requests\"', 'Sum', 300)"
    settlements = "SEARCH('{${local.ns},Network,Outcome,Version} MetricName=\"Settlements\"', 'Sum', 300)"
    failures    = "SEARCH('{${local.ns},Network,Version} MetricName=\"SettlementFailures\"', 'Sum', 300)"
  }
  widgets = [
    {
      type = "metric", x = 0, y = 0, width = 12, height = 6
      properties = {
        title  = "Requests by x402 version, endpoint and outcome"
        region = local.region
        stat   = "Sum"
        period = 300
        metrics = [
          [{ expression = local.search.requests, id = "requests", label = "" }]
        ]
      }
    },
    {
      type = "metric", x = 12, y = 0, width = 12, height = 6
      properties = {
        title  = "v2 share of requests (%)"
        region = local.region
        period = 300
        metrics = [
          [{ expression = "100 * v2 / (v1 + v2)", id = "share", label = "v2 %" }],
          [{ expression = "SUM(SEARCH('{${local.ns},Endpoint,Outcome,Version} MetricName=\"Requests\" Version=\"2\"', 'Sum', 300))", id = "v2", visible = false }],
          [{ expression = "SUM(SEARCH('{${local.ns},Endpoint,Outcome,Version} MetricName=\"Requests\" Version=\"1\"', 'Sum', 300))", id = "v1", visible = false }]
        ]
      }
    },
    {
      type = "metric", x = 0, y = 6, width = 12, height = 6
      properties = {
        title   = "Settlements by version, network and outcome"
        region  = local.region
        period  = 300
        metrics = [[{ expression = local.search.settlements, id = "settlements", label = "" }]]
      }
    },
    {
      type = "metric", x = 12, y = 6, width = 12, height = 6
      properties = {
        title   = "Facilitator-side settlement failures by version and network"
        region  = local.region
        period  = 300
        metrics = [[{ expression = local.search.failures, id = "failures", label = "" }]]
      }
    },
    {
      type = "metric", x = 0, y = 12, width = 8, height = 6
      properties = {
        title  = "CAIP-2 parse errors"
        region = local.region
        stat   = "Sum"
        period = 300
        metrics = [
          [local.ns, "Caip2ParseErrors"]
        ]
      }
    },
    {
      type = "metric", x = 8, y = 12, width = 8, height = 6
      properties = {
        title  = "Load balancer: 5xx and p99 latency"
        region = local.region
        period = 300
        metrics = [
          ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", aws_lb.this.arn_suffix, { stat = "Sum" }],
          ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", aws_lb.this.arn_suffix, { stat = "Sum" }],
          ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", aws_lb.this.arn_suffix, { stat = "p99", yAxis = "right" }]
        ]
      }
    },
    {
      type = "metric", x = 16, y = 12, width = 8, height = 6
      properties = {
        title  = "Requests per target group (blue, green)"
        region = local.region
        stat   = "Sum"
        period = 60
        metrics = [for c in local.colors : [
          "AWS/ApplicationELB", "RequestCountPerTarget", "TargetGroup", aws_lb_target_group.color[c].arn_suffix, { label = c }
        ]]
      }
    },
    {
      type = "alarm", x = 0, y = 18, width = 24, height = 4
      properties = {
        title = "Alarms"
        alarms = concat(
          [
            aws_cloudwatch_metric_alarm.settlement_failure_spike.arn,
            aws_cloudwatch_metric_alarm.settlement_failure_rate.arn,
            aws_cloudwatch_metric_alarm.caip2_parse_errors.arn,
            aws_cloudwatch_metric_alarm.http_5xx_rate.arn,
            aws_cloudwatch_metric_alarm.p99_latency.arn,
          ],
          [for a in aws_cloudwatch_metric_alarm.v1_traffic_drop : a.arn],
          [for c in local.colors : aws_cloudwatch_metric_alarm.unhealthy_tasks[c].arn]
        )
      }
    }
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = "${var.name}-x402"
  dashboard_body = jsonencode({ widgets = local.widgets })
}
