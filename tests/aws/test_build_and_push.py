"""build-and-push.sh against the ECR API of the moto stand-in. The image build and push
themselves are not run: no base image or registry is reachable from the test machines
(docs/deployment.md); --dry-run shows the commands a real run executes."""

import json
import unittest

from emulator import Emulator


def setUpModule():
    global EMULATOR, ECR
    EMULATOR = Emulator()
    ECR = EMULATOR.client("ecr")
    ECR.create_repository(repositoryName="x402-facilitator")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": "sha256:" + "a" * 64, "size": 1, "mediaType": "application/vnd.docker.container.image.v1+json"},
                "layers": []}
    ECR.put_image(repositoryName="x402-facilitator", imageManifest=json.dumps(manifest), imageTag="v1.0.0")


def tearDownModule():
    EMULATOR.stop()


class BuildAndPush(unittest.TestCase):
    def run_script(self, *args, repository="x402-facilitator"):
        env = {"X402_ECR_REPOSITORY": repository} if repository is not None else {"X402_ECR_REPOSITORY": ""}
        return EMULATOR.run("build-and-push.sh", *args, extra_env=env)

    def test_dry_run_names_the_repository_uri_and_the_release_tag(self):
        code, out, err, _ = self.run_script("--dry-run", "v2.0.0-dual")
        self.assertEqual(code, 0, err)
        uri = ECR.describe_repositories(repositoryNames=["x402-facilitator"])["repositories"][0]["repositoryUri"]
        self.assertIn(f"docker build -f ", out)
        self.assertIn("deploy/container/Dockerfile", out)
        self.assertIn(f"-t {uri}:v2.0.0-dual", out)
        self.assertIn(f"docker push {uri}:v2.0.0-dual", out)
        self.assertIn("docker login --username AWS --password-stdin " + uri.split("/")[0], out)

    def test_a_tag_already_in_the_repository_is_refused(self):
        code, _, err, _ = self.run_script("--dry-run", "v1.0.0")
        self.assertEqual(code, 2)
        self.assertIn("already in x402-facilitator", err)

    def test_unknown_repository_is_refused(self):
        code, _, err, _ = self.run_script("--dry-run", "v2.0.0", repository="nope")
        self.assertEqual(code, 2)
        self.assertIn("ECR repository 'nope' not found", err)
        code, _, err, _ = self.run_script("--dry-run", "v2.0.0", repository=None)
        self.assertEqual(code, 2)
        self.assertIn("X402_ECR_REPOSITORY is not set", err)

    def test_bad_tags_are_refused(self):
        for tag, says in (("", "usage"), ("latest", "'latest' is refused"), ("-v2", "unknown option"),
                          (".v2", "not a valid image tag"), ("v2/x", "not a valid image tag"),
                          ("a" * 129, "not a valid image tag"), ("v 2", "not a valid image tag")):
            args = ("--dry-run", tag) if tag else ("--dry-run",)
            code, _, err, _ = self.run_script(*args)
            self.assertEqual(code, 2, (tag, err))
            self.assertIn(says, err, tag)


if __name__ == "__main__":
    unittest.main()
