"""samdeploy: what `sam deploy` will read from samconfig.toml, checked offline against the template.

Usage: tools/.venv/sam/bin/python tools/samdeploy.py TEMPLATE SAMCONFIG

It reads SAMCONFIG with SAM CLI's own reader (samcli.lib.config.samconfig, from the pinned
aws-sam-cli) and parses its parameter overrides and tags as `sam deploy` does, then checks, for
every environment that configures `deploy`:

- a stack name, a region and tags are set, changesets are confirmed, S3 is resolved by SAM, and
  the capabilities are CAPABILITY_IAM (the template names no IAM resource, so no more);
- every parameter override names a parameter of TEMPLATE and meets its AllowedValues,
  AllowedPattern, MinValue/MaxValue, MinLength;
- every parameter of TEMPLATE has a Default, so `sam deploy --guided` asks nothing a user must
  invent: each parameter question is answered by Enter.

It prints each problem and exits 1 if there is any. No AWS call: it only reads the two files.
"""

import re
import sys
from pathlib import Path

from samcli.cli.types import CfnParameterOverridesType, CfnTags
from samcli.lib.config.samconfig import SamConfig
from samcli.yamlhelper import yaml_parse


def parameter_problems(name: str, value: str, spec: dict) -> list[str]:
    problems = []
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        problems.append(f"{name}={value} is not one of its AllowedValues")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        problems.append(f"{name}={value} does not match its AllowedPattern")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        problems.append(f"{name} is shorter than its MinLength")
    if spec.get("Type") == "Number":
        try:
            n = float(value)
        except ValueError:
            return problems + [f"{name}={value} is not a number"]
        if "MinValue" in spec and n < float(spec["MinValue"]):
            problems.append(f"{name}={value} is below its MinValue")
        if "MaxValue" in spec and n > float(spec["MaxValue"]):
            problems.append(f"{name}={value} is above its MaxValue")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    template = yaml_parse(Path(argv[0]).read_text())
    parameters = template.get("Parameters", {})
    config_path = Path(argv[1])
    config = SamConfig(str(config_path.parent), config_path.name)
    problems = [f"parameter {name} has no Default: sam deploy --guided would need an answer"
                for name, spec in parameters.items() if "Default" not in spec]
    envs = [env for env in config.get_stage_configuration_names() if config.get_all(["deploy"], "parameters", env)]
    if "default" not in envs:
        problems.append("no default environment configures deploy")
    for env in envs:
        deploy = config.get_all(["deploy"], "parameters", env)
        where = f"[{env}]"
        for key in ("stack_name", "region", "tags"):
            if not deploy.get(key):
                problems.append(f"{where} sets no {key}")
        if deploy.get("confirm_changeset") is not True:
            problems.append(f"{where} does not confirm changesets (confirm_changeset = true)")
        if deploy.get("resolve_s3") is not True:
            problems.append(f"{where} does not let SAM resolve the artifact bucket (resolve_s3 = true)")
        if deploy.get("capabilities") != "CAPABILITY_IAM":
            problems.append(f"{where} capabilities = {deploy.get('capabilities')!r}, want \"CAPABILITY_IAM\"")
        tags = CfnTags().convert(deploy.get("tags", ""), None, None) if deploy.get("tags") else {}
        if deploy.get("tags") and not tags:
            problems.append(f"{where} tags do not parse as Key=Value pairs")
        overrides = deploy.get("parameter_overrides", "")
        if isinstance(overrides, list):
            overrides = " ".join(overrides)
        for name, value in (CfnParameterOverridesType().convert(overrides, None, None) if overrides else {}).items():
            if name not in parameters:
                problems.append(f"{where} overrides {name}, which the template does not declare")
                continue
            problems += [f"{where} {p}" for p in parameter_problems(name, str(value), parameters[name])]
    for p in problems:
        print(f"{argv[1]}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
