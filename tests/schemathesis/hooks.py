"""schemathesis hooks of the contract test (tests/tests/contract.rs), loaded through
SCHEMATHESIS_HOOKS: the NDJSON body of `POST /api/v1/import` is sent as text, and the failures
exclusions.txt lists are dropped, each only where the server's answer names its rule."""

import atexit
import json
import pathlib
import sys

import schemathesis

# `POST /api/v1/import` takes NDJSON: a string body, sent as it is.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


# An NDJSON body is text: a value of another JSON type (a negative case of the body's
# `type: string`) has no NDJSON form, and sent as text it is a string after all. Failures of such
# cases are dropped (and counted at the end) like the listed ones.
NOT_TEXT = {
    "code": "ST201",
    "operation": "POST /api/v1/import",
    "answer": "(a body that is not a string)",
    "used": 0,
}


def _read_exclusions():
    path = pathlib.Path(__file__).with_name("exclusions.txt")
    rules = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split("|")]
        if len(parts) != 4 or not all(parts):
            sys.exit(f"{path}:{number}: expected `code | operation | answer contains | why`")
        code, operation, answer, _why = parts
        rules.append({"code": code, "operation": operation, "answer": answer, "used": 0})
    return rules


EXCLUSIONS = _read_exclusions()


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    """Keeps every failure but those of a listed rule."""
    if (
        failure.code == NOT_TEXT["code"]
        and case.operation.label == NOT_TEXT["operation"]
        and not isinstance(case.body, str)
    ):
        NOT_TEXT["used"] += 1
        return False
    for rule in EXCLUSIONS:
        if (
            failure.code == rule["code"]
            and case.operation.label == rule["operation"]
            and _every_reason_is(response.text or "", rule["answer"])
        ):
            rule["used"] += 1
            return False
    return True


def _every_reason_is(answer, text):
    """Whether every reason the JSON error `answer` gives contains `text`: each of its
    `problems` when it lists them, else its `error` sentence. A rejection for the listed rule
    and another reason besides is not dropped."""
    try:
        body = json.loads(answer)
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    problems = body.get("problems")
    if problems:
        return all(text in str(problem.get("message", "")) for problem in problems)
    return text in str(body.get("error", ""))


@atexit.register
def _report_exclusions():
    for rule in [*EXCLUSIONS, NOT_TEXT]:
        print(
            f"exclusion {rule['code']} {rule['operation']} ({rule['answer']!r}): "
            f"{rule['used']} failures dropped",
            file=sys.stderr,
        )
