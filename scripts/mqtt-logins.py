#!/usr/bin/env python3
"""Make the broker logins of a line: a random password for the controller and for every robot
of the line file's fleet, the Mosquitto password file (hashed with mosquitto_passwd), and the
files linectl and the robot simulator read.

    scripts/mqtt-logins.py --config line.yaml --out secrets/mqtt

writes into the --out directory (created with mode 0700; every file 0600):

    passwd                  Mosquitto's password_file (copy it next to mosquitto.conf)
    controller.password     mqtt.password_file of the line file (user --controller-user)
    robots/<serial>.password each robot's password: enter it in the vehicle's configuration
    robot-logins.yaml       linectl sim robots --logins: every simulated robot logs in as itself

Robots log in with their serial number as user name (the shipped ACL, deploy/mosquitto/acl,
relies on it). Existing files are never overwritten: remove the directory first, or add one
robot later with ``mosquitto_passwd passwd <serial>``. Needs mosquitto_passwd (Debian/Ubuntu
package mosquitto) and linectl importable (run it with linectl's Python).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from controller.linefile.loader import ConfigError, load, load_reference

PASSWORD_BYTES = 24  # 32 URL-safe characters


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def make_logins(serials: list[str], controller_user: str, out: Path, mosquitto_passwd: str) -> None:
    """Write the files described in the module's docstring for ``serials``."""
    if controller_user in serials:
        raise ValueError(f"the controller user {controller_user!r} is also a robot's serial")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    robots = out / "robots"
    robots.mkdir(mode=0o700, exist_ok=True)
    taken = [out / "passwd", out / "controller.password", out / "robot-logins.yaml"]
    taken += [robots / f"{s}.password" for s in serials]
    existing = [str(p) for p in taken if p.exists()]
    if existing:
        raise FileExistsError(f"not overwriting {', '.join(existing)}")
    passwords = {
        user: secrets.token_urlsafe(PASSWORD_BYTES) for user in [controller_user, *serials]
    }
    # the plain file is hashed in place, so that no password shows on a command line
    _write_private(out / "passwd", "".join(f"{u}:{p}\n" for u, p in passwords.items()))
    try:
        subprocess.run([mosquitto_passwd, "-U", str(out / "passwd")], check=True)
    except (OSError, subprocess.CalledProcessError):
        (out / "passwd").unlink()
        raise
    _write_private(out / "controller.password", passwords[controller_user] + "\n")
    lines = ["# linectl sim robots --logins: each simulated robot's own broker login", "robots:"]
    for serial in serials:
        pw_file = robots / f"{serial}.password"
        _write_private(pw_file, passwords[serial] + "\n")
        lines.append(f"  {serial}: {{password_file: {json.dumps(str(pw_file.resolve()))}}}")
    _write_private(out / "robot-logins.yaml", "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", type=Path, help="line file (default: the reference line)")
    ap.add_argument("--out", type=Path, required=True, help="directory for the files")
    ap.add_argument("--controller-user", default="linectl", help="the controller's user name")
    args = ap.parse_args(argv)
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        print("mosquitto_passwd not found (install the mosquitto package)", file=sys.stderr)
        return 1
    try:
        cfg = load(args.config) if args.config is not None else load_reference()
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    serials = [r.serial for r in cfg.robots.fleet]
    try:
        make_logins(serials, args.controller_user, args.out, tool)
    except (ValueError, OSError, subprocess.CalledProcessError) as exc:
        print(f"mqtt-logins: {exc}", file=sys.stderr)
        return 1
    print(
        f"{len(serials) + 1} logins in {args.out}: the controller ({args.controller_user}) and "
        f"{', '.join(serials)}"
    )
    print("line file:")
    print(f"  mqtt:\n    username: {args.controller_user}")
    print(f"    password_file: {(args.out / 'controller.password').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
