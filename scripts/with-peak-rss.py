"""Runs a command and writes its exact peak RSS (KiB) to a file when it exits.

    with-peak-rss.py RSS_FILE COMMAND [ARG...]

The command inherits this process's stdin, stdout, stderr and environment; the exit status is
the command's (128 + N when signal N ended it). For processes that exit on their own (a
producer's burst), where sampling /proc/PID/status would miss the last moments: the kernel's
rusage of the reaped child (os.wait4) is the true high-water mark. Standard library only, so
any python3 runs it.
"""
import os
import signal
import sys


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    rss_file, command = sys.argv[1], sys.argv[2:]
    child = os.fork()
    if child == 0:
        try:
            os.execvp(command[0], command)
        except OSError as error:
            print(f"with-peak-rss.py: cannot run {command[0]}: {error}", file=sys.stderr)
            os._exit(127)
    # Pass a stop request on to the command and keep waiting for it to exit.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda n, _frame: os.kill(child, n))
    while True:
        try:
            _, status, usage = os.wait4(child, 0)
            break
        except InterruptedError:
            continue
    with open(rss_file, "w", encoding="ascii") as file:
        file.write(f"{usage.ru_maxrss}\n")
    code = os.waitstatus_to_exitcode(status)
    sys.exit(128 - code if code < 0 else code)


if __name__ == "__main__":
    main()
