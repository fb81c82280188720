"""`python -m api [uvicorn's options]`: uvicorn, with the same options and UVICORN_* variables,
serving over `api.http_protocol` (slow clients cut off) instead of its plain protocol."""

import sys

from uvicorn.main import main as uvicorn_command

PROTOCOL = "api.http_protocol:ReadDeadlineProtocol"


def main(argv: list[str] | None = None) -> None:
    command = uvicorn_command
    with command.make_context("python -m api", list(sys.argv[1:] if argv is None else argv)) as ctx:
        ctx.params["http"] = PROTOCOL  # an import string: each worker process imports it
        command.invoke(ctx)


if __name__ == "__main__":
    main()
