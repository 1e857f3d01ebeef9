"""samauth: the question `sam deploy --guided` asks about authentication, asked offline.

Usage: tools/.venv/sam/bin/python tools/samauth.py TEMPLATE

Before a guided deploy, AWS SAM CLI lists every function's Api/HttpApi events and function URLs
that have no authorization and asks "<function> has no authentication. Is this okay?" once for
each (Enter answers no and stops the deploy). This runs the same check, SAM CLI's own
(samcli.commands.deploy.auth_utils.auth_per_resource, from the pinned aws-sam-cli), on TEMPLATE:
it prints each resource it would ask about and exits 1 if there is any, else prints nothing and
exits 0. No AWS call: it only reads the template.
"""

import sys

from samcli.commands.deploy.auth_utils import auth_per_resource
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    stacks, _ = SamLocalStackProvider.get_stacks(argv[0], parameter_overrides={})
    checked = auth_per_resource(stacks)
    if not checked:
        print(f"{argv[0]}: no function with an API event: the check found nothing to check", file=sys.stderr)
        return 1
    open_ones = sorted({name for name, authorized in checked if not authorized})
    for name in open_ones:
        print(f"{argv[0]}: sam deploy --guided would ask: {name} has no authentication. Is this okay?", file=sys.stderr)
    return 1 if open_ones else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
