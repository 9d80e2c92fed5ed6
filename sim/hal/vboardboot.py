# How the virtual board runs boot.py and main.py from its flash (sim/mpvm/board.mjs calls
# run(name) at boot; installed in the VM's /rom): as a board's pyexec_file does, the file
# runs as __main__ and an exception ends it with its traceback on the port; then the REPL.
import sys


def run(name):
    try:
        f = open(name, "rb")
    except OSError:
        return False
    try:
        src = f.read()
    finally:
        f.close()
    g = {"__name__": "__main__", "__file__": name}
    try:
        exec(compile(src, name, "exec"), g)
    except SystemExit:
        pass
    except BaseException as e:   # KeyboardInterrupt included: its traceback, then the REPL
        sys.print_exception(e)
    return True
