"""The check idgraph's GraphQL fuzzing runs in place of schemathesis' `not_a_server_error`.

That check counts every `errors` entry as a failure. idgraph answers bad input (an unknown app,
an empty name, an expired token) with errors that carry a stable `extensions.code`, as its
committed schema documents; only an internal failure is a bug. So a response fails when its
status is 5xx, when it is not a JSON object, or when an error has no code or the code
`INTERNAL`.
"""

import schemathesis


@schemathesis.check
def no_internal_error(ctx, response, case):
    """Fails on a 5xx, a body that is not a JSON object, or an error coded INTERNAL or not at all."""
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}: {response.text[:300]}")
    body = response.json()
    if not isinstance(body, dict):
        raise AssertionError(f"not a JSON object: {response.text[:300]}")
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code is None:
            raise AssertionError(f"an error without extensions.code: {error}")
        if code == "INTERNAL":
            raise AssertionError(f"an internal error: {error}")
