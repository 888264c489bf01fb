"""`python -m lstm_inspect` and the `lstm-inspect` script: the command line, where a Ctrl-C during
start-up (importing the CLI takes a tenth of a second) ends as one later does, in one line and
exit status 130, not a KeyboardInterrupt traceback."""

import sys


def run() -> None:
    try:
        from lstm_inspect.cli import main
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        raise SystemExit(130) from None
    main(prog_name="lstm-inspect")


if __name__ == "__main__":
    run()
