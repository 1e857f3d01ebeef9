"""samtransform: run the AWS SAM transform on templates offline, as CloudFormation would on deploy.

Usage: localstack/.venv/bin/python tools/samtransform.py [--region REGION] [--cfn-lint] [--output FILE] TEMPLATE...

cfn-lint 1.x no longer runs the SAM transform, so a template it passes can still be rejected by
CloudFormation's AWS::Serverless-2016-10-31 transform on deploy. This runs the transform itself
(aws-sam-translator, pinned by localstack/requirements.txt) on each TEMPLATE, with no AWS call:
local CodeUri paths are replaced by a placeholder S3 location (as `sam package` would upload them),
managed policy names come from the map bundled with the translator, and the AWS configuration is
pointed at nothing, so any attempted call fails instead of reaching AWS.

With --cfn-lint, the transformed template is also linted by cfn-lint, which checks the resources
the transform generates (roles, functions, routes, permissions) rather than the SAM shorthand.

With --output FILE (one TEMPLATE only), the transformed template is also written to FILE as JSON,
for the checks that read CloudFormation rather than SAM (`make lint` runs checkov on it).

Prints nothing and exits 0 when every template transforms (and lints) cleanly; otherwise prints
the transform's (or cfn-lint's) messages per template and exits 1. Exits 2 on bad usage or when a
TEMPLATE is missing or not YAML/JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

# Hermetic AWS configuration, set before boto3 is imported: no profile, config or credential files
# from the environment, and every endpoint at a closed local port, so nothing can reach AWS.
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
              "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
    os.environ.pop(_name, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"

import boto3  # noqa: E402
from cfnlint.decode.decode import decode  # noqa: E402
from cfnlint.decode.utils import convert_dict  # noqa: E402
from samtranslator.model.exceptions import ExceptionWithMessage  # noqa: E402
from samtranslator.parser.parser import Parser  # noqa: E402
from samtranslator.plugins.application.serverless_app_plugin import ServerlessAppPlugin  # noqa: E402
from samtranslator.public.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.translator.translator import Translator  # noqa: E402

# The translator and cfn-lint log what they also raise (tracebacks included); the raised messages
# are what this prints.
for _name in ("samtranslator", "cfnlint"):
    logging.getLogger(_name).setLevel(logging.CRITICAL + 1)

# Where local artifact paths point after the stand-in for `sam package`.
PLACEHOLDER_S3 = "s3://samtransform-offline/artifact.zip"

# The properties that name a local path SAM CLI uploads, per resource type (Globals included).
LOCAL_URI_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}
GLOBALS_SECTIONS = {
    "Function": "AWS::Serverless::Function",
    "Api": "AWS::Serverless::Api",
    "HttpApi": "AWS::Serverless::HttpApi",
}


class Rejected(Exception):
    """The template failed the check; args hold the messages to print, under heading."""

    heading = "rejected by the SAM transform (AWS::Serverless-2016-10-31)"
    status = 1


class Unreadable(Rejected):
    """The file is not a YAML or JSON template."""

    heading = "not a readable template"
    status = 2


class LintFindings(Rejected):
    """cfn-lint found errors or warnings in the transformed template."""

    heading = "transformed by SAM, but cfn-lint rejects the result"


def _replace_local_uris(template: dict[str, Any]) -> None:
    """Points local artifact paths (plain strings that are not s3:// URIs) at PLACEHOLDER_S3."""

    def fix(properties: Any, prop: str) -> None:
        if isinstance(properties, dict):
            value = properties.get(prop)
            if isinstance(value, str) and not value.startswith("s3://"):
                properties[prop] = PLACEHOLDER_S3

    globals_ = template.get("Globals")
    if isinstance(globals_, dict):
        for section, resource_type in GLOBALS_SECTIONS.items():
            fix(globals_.get(section), LOCAL_URI_PROPERTIES[resource_type])
    resources = template.get("Resources")
    if isinstance(resources, dict):
        for resource in resources.values():
            if isinstance(resource, dict) and resource.get("Type") in LOCAL_URI_PROPERTIES:
                fix(resource.get("Properties"), LOCAL_URI_PROPERTIES[resource["Type"]])


def _no_sar_client() -> Any:
    raise Rejected("AWS::Serverless::Application needs the Serverless Application Repository; "
                          "the offline transform makes no AWS calls")


def load(path: str) -> dict[str, Any]:
    """Reads a YAML or JSON CloudFormation template, short-form intrinsics (!Ref, !Sub...) included."""
    template, matches = decode(path)
    if matches:
        raise Unreadable(*(f"line {m.linenumber}: {m.message}" for m in matches))
    if not isinstance(template, dict):
        raise Unreadable("no top-level mapping")
    return convert_dict(template)


def transform(template: dict[str, Any], region: str) -> dict[str, Any]:
    """Runs the SAM transform on template, offline; returns the CloudFormation template."""
    _replace_local_uris(template)
    translator = Translator(
        managed_policy_map={},  # names resolve from the map bundled with the translator
        sam_parser=Parser(),
        plugins=[ServerlessAppPlugin(sar_client_creator=_no_sar_client)],
        boto_session=boto3.session.Session(region_name=region),
    )
    try:
        return translator.translate(sam_template=template, parameter_values={})
    except InvalidDocumentException as e:
        raise Rejected(*(cause.message for cause in e.causes)) from e
    except ExceptionWithMessage as e:
        raise Rejected(e.message) from e


def lint_transformed(template: dict[str, Any], region: str) -> list[str]:
    """cfn-lint's findings on a transformed template, as printable lines (errors and warnings)."""
    from cfnlint.api import lint  # noqa: PLC0415 - only loaded when asked for

    findings = lint(json.dumps(template), regions=[region])
    return [f"cfn-lint {m.rule.id} {m.message} (at {'/'.join(str(p) for p in m.path) or 'template'})"
            for m in findings]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="samtransform", description=__doc__.split("\n\n")[0])
    parser.add_argument("templates", nargs="+", metavar="TEMPLATE")
    parser.add_argument("--region", default="us-east-1", help="region the transform runs in (default us-east-1)")
    parser.add_argument("--cfn-lint", action="store_true", help="also run cfn-lint on the transformed template")
    parser.add_argument("--output", metavar="FILE", help="write the transformed template to FILE (JSON); one TEMPLATE only")
    args = parser.parse_args(argv)
    if args.output and len(args.templates) != 1:
        parser.error("--output takes one TEMPLATE")

    status = 0
    for path in args.templates:
        try:
            if not os.path.isfile(path):
                raise Unreadable("no such file")
            result = transform(load(path), args.region)
            if args.output:
                with open(args.output, "w", encoding="utf-8") as f:
                    json.dump(result, f, indent=1, sort_keys=True)
            if args.cfn_lint:
                findings = lint_transformed(result, args.region)
                if findings:
                    raise LintFindings(*findings)
        except Rejected as e:
            print(f"{path}: {e.heading}:", file=sys.stderr)
            for message in e.args:
                print(f"  {message}", file=sys.stderr)
            status = max(status, e.status)
        except Exception as e:  # noqa: BLE001 - a crash in the translator is a failed check, never a pass
            print(f"{path}: the SAM transform failed: {type(e).__name__}: {e}", file=sys.stderr)
            status = max(status, 1)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
