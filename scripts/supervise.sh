#!/usr/bin/env bash
# Keep a command running: start it again whenever it exits, until this script is told to stop.
# Usage: scripts/supervise.sh NAME COMMAND [ARGS...]    (scripts/run.sh runs the worker under it)
#
# - Every restart prints one line: "worker (pid 123) was killed by SIGKILL; starting it again in 1 s".
# - The pause before a restart doubles while the command keeps dying soon after it starts
#   (1, 2, 4 ... 30 s at most) and is back to 1 s once it has run for a minute.
# - SIGTERM, SIGINT or SIGHUP to this script send the command one SIGTERM, wait for it to end
#   and exit: an RQ worker then shuts down warmly (it finishes the job in hand).
# - The command runs in a process group of its own (set -m), so a Ctrl-C in the terminal
#   reaches it only through this script. Otherwise it would get the terminal's SIGINT and our
#   SIGTERM (a second signal makes RQ abandon its job), and it could exit before we knew we
#   were stopping, and be started again.
set -euo pipefail
set -m

name=$1
shift
pause=1          # seconds
steady_after=60  # seconds of running that reset the pause

stop() {
  trap '' HUP INT TERM  # one SIGTERM for the command, however many signals we get
  local running=${!:-}  # the last process started: the command, or the pause before restarting it
  if [ -n "$running" ]; then
    kill -TERM "$running" 2>/dev/null || true
    wait "$running" 2>/dev/null || true
  fi
  exit 0
}
trap stop HUP INT TERM

how_it_ended() {
  local code=$1 signal
  if ((code > 128)) && signal=$(kill -l $((code - 128)) 2>/dev/null); then
    echo "was killed by SIG${signal}"
  else
    echo "exited with code ${code}"
  fi
}

while true; do
  started=$SECONDS
  "$@" </dev/null &  # its own process group has no terminal to read from
  command_pid=$!
  code=0
  wait "$command_pid" 2>/dev/null || code=$?  # 2>/dev/null: bash's own "Killed" line; ours follows
  if ((SECONDS - started >= steady_after)); then pause=1; fi
  echo "${name} (pid ${command_pid}) $(how_it_ended "$code"); starting it again in ${pause} s"
  sleep "$pause" &  # in the background, so that a signal is handled at once, not after the pause
  wait $! || true
  pause=$((pause * 2 > 30 ? 30 : pause * 2))
done
