"""The AWS stand-in of the deployment tests: moto in server mode on a loopback port.

moto is an emulator: it keeps the API's state (rules, weights, target groups, secrets,
repositories) and answers in the API's shapes, but models no data plane. No request is
routed by its load balancer, no task runs, no alarm evaluates a metric, no log group
extracts a metric. docs/deployment.md lists what this proves and what it cannot.
"""

import logging
import os
import subprocess
import time
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "deploy" / "aws" / "scripts"
REGION = "us-east-2"


class Emulator:
    """A moto server and the environment the AWS CLI and boto3 need to talk to it."""

    def __init__(self):
        # The emulator's access log is noise in a test's output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.env = {
            **os.environ,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }
        # The AWS CLI of the test venv, first on PATH for the scripts.
        bin_dir = str(Path(os.sys.executable).parent)
        self.env["PATH"] = bin_dir + os.pathsep + self.env.get("PATH", "")

    def client(self, service):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self):
        self.server.stop()

    def run(self, script, *args, extra_env=None):
        """Runs a deploy/aws/scripts script; (exit code, stdout, stderr, seconds)."""
        env = dict(self.env)
        env.update(extra_env or {})
        started = time.monotonic()
        done = subprocess.run(
            ["bash", str(SCRIPTS / script), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.returncode, done.stdout, done.stderr, time.monotonic() - started


class WeightedListener:
    """What the Terraform module creates for traffic: an ALB, an HTTPS listener, a blue
    and a green target group, and one weighted forward rule (blue 100, green 0)."""

    def __init__(self, emulator, name="x402-test"):
        ec2 = emulator.client("ec2")
        elbv2 = emulator.client("elbv2")
        self.elbv2 = elbv2
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
                "Subnet"
            ]["SubnetId"]
            for i, z in ((1, "a"), (2, "b"))
        ]
        lb = elbv2.create_load_balancer(Name=name, Subnets=subnets, Type="application")
        self.lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
        self.tg = {}
        for color in ("blue", "green"):
            self.tg[color] = elbv2.create_target_group(
                Name=f"{name}-{color}",
                Protocol="HTTP",
                Port=8080,
                VpcId=vpc,
                TargetType="ip",
                HealthCheckPath="/health/ready",
            )["TargetGroups"][0]["TargetGroupArn"]
        self.listener_arn = elbv2.create_listener(
            LoadBalancerArn=self.lb_arn,
            Protocol="HTTP",
            Port=443,
            DefaultActions=[
                {
                    "Type": "fixed-response",
                    "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
                }
            ],
        )["Listeners"][0]["ListenerArn"]
        self.rule_arn = elbv2.create_rule(
            ListenerArn=self.listener_arn,
            Priority=100,
            Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
            Actions=[self.forward(100, 0)],
        )["Rules"][0]["RuleArn"]

    def forward(self, blue, green):
        return {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": self.tg["blue"], "Weight": blue},
                    {"TargetGroupArn": self.tg["green"], "Weight": green},
                ]
            },
        }

    def weights(self):
        """{color: weight} as the emulator's rule shows it."""
        rule = self.elbv2.describe_rules(RuleArns=[self.rule_arn])["Rules"][0]
        groups = next(a for a in rule["Actions"] if a["Type"] == "forward")["ForwardConfig"]["TargetGroups"]
        by_arn = {g["TargetGroupArn"]: g.get("Weight") for g in groups}
        return {color: by_arn.get(arn) for color, arn in self.tg.items()}

    def script_env(self, **more):
        env = {
            "X402_LISTENER_ARN": self.listener_arn,
            "X402_BLUE_TG_ARN": self.tg["blue"],
            "X402_GREEN_TG_ARN": self.tg["green"],
        }
        env.update(more)
        return env
