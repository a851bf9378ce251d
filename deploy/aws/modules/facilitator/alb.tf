# The load balancer: HTTPS in front of two target groups (blue, green) with a weighted
# forward rule, and a test listener that reaches the candidate only.

locals {
  colors          = ["blue", "green"]
  candidate_color = var.stable_color == "blue" ? "green" : "blue"
  weights         = { blue = var.blue_weight, green = var.green_weight }
  # The load balancer keeps a deregistering task this long: the task's whole stop.
  deregistration_delay = var.shutdown_grace_seconds + var.drain_timeout_seconds
}

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "x402 facilitator load balancer"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each          = toset(var.ingress_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from clients"
  cidr_ipv4         = each.value
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_ingress_rule" "alb_test" {
  for_each          = toset(var.test_listener_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "test listener from operators"
  cidr_ipv4         = each.value
  from_port         = var.test_listener_port
  to_port           = var.test_listener_port
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "to the tasks"
  referenced_security_group_id = aws_security_group.tasks.id
  from_port                    = 8080
  to_port                      = 8080
  ip_protocol                  = "tcp"
}

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_28:a WAF is the operator's choice (waf_acl_arn); the facilitator limits callers itself (API_KEYS, rate limits)
  #checkov:skip=CKV2_AWS_76:no web ACL unless waf_acl_arn is given; its rules are the operator's
  #checkov:skip=CKV_AWS_91:access logs are written when access_logs_bucket is set
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  # A settle waits for its receipt: the idle timeout covers REQUEST_TIMEOUT_SECONDS (90).
  idle_timeout = 120
  dynamic "access_logs" {
    for_each = var.access_logs_bucket == "" ? [] : [1]
    content {
      bucket  = var.access_logs_bucket
      prefix  = var.name
      enabled = true
    }
  }
  tags = var.tags
}

resource "aws_wafv2_web_acl_association" "this" {
  count        = var.waf_acl_arn == "" ? 0 : 1
  resource_arn = aws_lb.this.arn
  web_acl_arn  = var.waf_acl_arn
}

resource "aws_lb_target_group" "color" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the tasks listen in private subnets, reachable from its security group only
  for_each             = toset(local.colors)
  name                 = "${var.name}-${each.key}"
  port                 = 8080
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = local.deregistration_delay
  health_check {
    path                = "/health/ready"
    matcher             = "200"
    interval            = 5
    timeout             = 2
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
  tags = merge(var.tags, { "x402:color" = each.key })
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = "{\"error\":\"no route\"}"
      status_code  = "404"
    }
  }
  tags = var.tags
}

# The rule shift-traffic.sh and the rollback function change: one forward action, two
# weighted target groups.
resource "aws_lb_listener_rule" "weighted" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 100
  action {
    type = "forward"
    forward {
      dynamic "target_group" {
        for_each = local.colors
        content {
          arn    = aws_lb_target_group.color[target_group.value].arn
          weight = local.weights[target_group.value]
        }
      }
    }
  }
  condition {
    path_pattern {
      values = ["/*"]
    }
  }
  tags = merge(var.tags, { "x402:rule" = "weighted" })
  lifecycle {
    precondition {
      condition     = var.blue_weight + var.green_weight == 100
      error_message = "blue_weight + green_weight must be 100."
    }
  }
}

# Defence in depth: the admin API is on its own port (ADMIN_ADDR), and the public
# listeners answer 404 for its paths whatever a task's configuration says.
resource "aws_lb_listener_rule" "no_admin" {
  for_each = {
    https = aws_lb_listener.https.arn
    test  = aws_lb_listener.test.arn
  }
  listener_arn = each.value
  priority     = 10
  action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = "{\"error\":\"not found\"}"
      status_code  = "404"
    }
  }
  condition {
    path_pattern {
      values = ["/admin/*"]
    }
  }
  tags = var.tags
}

resource "aws_lb_listener" "test" {
  load_balancer_arn = aws_lb.this.arn
  port              = var.test_listener_port
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.color[local.candidate_color].arn
  }
  tags = var.tags
}
