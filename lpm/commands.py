"""How a family of sub-commands (``lpm ppt ...``, ``lpm caption ...``) runs: the command chosen by
name, and what each way of ending means for the user (one line on stderr and an exit status).

Exit status: 0 done; 1 a stop (NaN loss), a damaged checkpoint, missing data, a closed pipe;
2 bad options (the commands exit 2 themselves, before any work); 130 Ctrl-C, with the command
line that continues the run when a checkpoint was saved.
"""

import sys

import gt
from lpm.checkpoint import CheckpointError
from lpm.data.base import DataError
from lpm.interrupt import TrainingInterrupted, print_alternatives, resume_command
from lpm.outputs import silence_stdout


def dispatch(argv, family, commands, usage, stopped=()):
    """Run ``commands[argv[0]](argv[1:], prog)`` for ``lpm <family> ...``; returns the exit status.
    ``stopped``: exception classes that mean training stopped itself (one line, status 1)."""
    if not argv or argv[0] in ("-h", "--help"):
        print(usage, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in commands:
        names = list(commands)
        print(f"lpm {family}: error: unknown command {command!r}: expected {', '.join(names[:-1])} or {names[-1]} "
              f"(see lpm {family} --help)", file=sys.stderr)
        return 2
    prog = f"lpm {family} {command}"
    # The command owns its process: freed memory stays for the next step (gt/backend/memory.py)
    gt.retain_freed_memory()
    try:
        status = commands[command](rest, prog)
        sys.stdout.flush()   # a closed pipe shows here, not in the interpreter's flush at exit
        return status
    except tuple(stopped) as exc:
        print(f"{prog}: stopped: {exc}", file=sys.stderr)
        return 1
    except (CheckpointError, DataError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        print_alternatives(exc, rest, prog)       # a damaged checkpoint (DamagedLatest)
        return 1
    except BrokenPipeError:
        silence_stdout()
        return 1
    except KeyboardInterrupt as exc:
        print(f"{prog}: {exc if isinstance(exc, TrainingInterrupted) else 'interrupted'}", file=sys.stderr)
        if isinstance(exc, TrainingInterrupted) and exc.checkpoint:
            print(f"{prog}: to continue: {resume_command(rest, prog, checkpoint=exc.checkpoint)}", file=sys.stderr)
        return 130
