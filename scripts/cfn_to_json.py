"""Prints a CloudFormation template (YAML with short-form tags such as !Ref/!Sub, or JSON) as JSON.

Uses cfn-lint's own decoder, so the JSON is the template as cfn-lint and CloudFormation read it
(`!Sub "..."` becomes `{"Fn::Sub": "..."}`). Run with the venv that scripts/setup.sh makes:

    /var/tmp/pipeline-responder-venv/bin/python scripts/cfn_to_json.py TEMPLATE
"""

import json
import sys

from cfnlint.decode import decode


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: cfn_to_json.py TEMPLATE", file=sys.stderr)
        return 2
    template, matches = decode(sys.argv[1])
    if matches:
        for match in matches:
            print(f"{sys.argv[1]}: {match}", file=sys.stderr)
        return 1
    json.dump(template, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
