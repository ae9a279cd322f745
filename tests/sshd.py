"""A real OpenSSH server on 127.0.0.1 for tests: own keys, own config, own port.

Each :class:`SshServer` runs ``/usr/sbin/sshd -D`` with a config written into its own folder:
a fresh ed25519 host key, an ``authorized_keys`` file, a pid file and a verbose log. Tests talk
to it exactly as gputui talks to a rented GPU machine, so host-key checks, reconnects, SFTP and
ProxyJump are exercised against the real thing.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from transfer.hosts import HostProfile

SSHD = "/usr/sbin/sshd"
START_TIMEOUT_S = 10.0
_RUNNING: set[SshServer] = set()


def generate_key(path: Path, comment: str = "gputui-test") -> Path:
    """A passphrase-less ed25519 key pair at ``path`` and ``path.pub``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in (path, path.with_name(path.name + ".pub")):
        old.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path


def key_fingerprint(pub_path: Path) -> str:
    """``SHA256:…`` as ``ssh-keygen -lf`` prints it: the reference that tests compare with."""
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub_path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_privsep_dir() -> None:
    """sshd started as root refuses to run without its privilege-separation folder."""
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)


@dataclass(eq=False)
class SshServer:
    """One sshd process standing for one remote host."""

    root: Path
    client_key: Path
    host: str = "127.0.0.1"
    port: int = 0
    user: str = field(default_factory=getpass.getuser)
    #: What sshd is started under, e.g. ``("ip", "netns", "exec", NS)`` for a host in a network
    #: namespace; the program must exec sshd, so that the pid is sshd's.
    launcher: tuple[str, ...] = ()
    #: A host certificate that sshd presents besides the plain key (see :meth:`certify_host_key`).
    host_certificate: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    # -- paths -----------------------------------------------------------------------------
    @property
    def key_path(self) -> Path:
        """The private key the test client logs in with."""
        return self.client_key

    @property
    def host_key_paths(self) -> list[Path]:
        return [self.root / "ssh_host_ed25519_key"]

    @property
    def host_pub_path(self) -> Path:
        return self.root / "ssh_host_ed25519_key.pub"

    @property
    def bin_dir(self) -> Path:
        """Put first on PATH of every session: tests drop stand-in programs here."""
        return self.root / "bin"

    @property
    def log_path(self) -> Path:
        return self.root / "sshd.log"

    @property
    def config_path(self) -> Path:
        return self.root / "sshd_config"

    @property
    def authorized_keys(self) -> Path:
        return self.root / "authorized_keys"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.poll() is None else None

    # -- what a client needs ---------------------------------------------------------------
    def known_hosts_line(self) -> str:
        """This server's entry in OpenSSH known_hosts format."""
        key_type, key_b64 = self.host_pub_path.read_text().split()[:2]
        return f"[{self.host}]:{self.port} {key_type} {key_b64}"

    def host_key_fingerprint(self) -> str:
        return key_fingerprint(self.host_pub_path)

    def trust(self, known_hosts: Path | None = None) -> Path:
        """Add this server's key to a known_hosts file (gputui's own, by default)."""
        path = known_hosts or Path(os.environ["GPUTUI_HOME"]) / "known_hosts"
        with path.open("a") as f:
            f.write(self.known_hosts_line() + "\n")
        return path

    def profile(self, name: str, **fields: object) -> HostProfile:
        """A host profile that reaches this server with the test key."""
        values: dict[str, object] = {
            "name": name,
            "hostname": self.host,
            "port": self.port,
            "user": self.user,
            "identity_file": str(self.client_key),
        }
        values.update(fields)
        return HostProfile(**values)  # type: ignore[arg-type]

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SshServer:
        """Write keys and config (first time), start sshd and wait until it answers."""
        _ensure_privsep_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.bin_dir.mkdir(exist_ok=True)
        if not self.host_key_paths[0].exists():
            generate_key(self.host_key_paths[0], comment="gputui-test-host")
        self.authorized_keys.write_text(
            self.client_key.with_name(self.client_key.name + ".pub").read_text()
        )
        fixed_port = self.port != 0
        for _ in range(1 if fixed_port else 5):
            if not fixed_port:
                self.port = free_port()
            self._write_config()
            if self._launch():
                _RUNNING.add(self)
                return self
        raise RuntimeError(f"sshd did not start; log:\n{self._log_tail()}")

    def stop(self) -> None:
        """Stop the listener and every connection it served.

        The commands still running get SIGTERM first, and a moment to exit: a login shell
        killed outright half-way through start-up files that take a lock (``pyenv rehash``)
        would leave that lock behind, and every later shell would wait for it.
        """
        self._end_commands()
        self.kill_connections()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        _RUNNING.discard(self)

    def restart(self) -> None:
        """Same port, same keys on disk (rotated ones included): a fresh sshd."""
        self.stop()
        self.start()

    def rotate_host_key(self) -> None:
        """The host was rebuilt: a new host key, and sshd restarted to present it."""
        generate_key(self.host_key_paths[0], comment="gputui-test-host-rotated")
        self.restart()

    def certify_host_key(self, ca_key: Path, principals: str | None = None) -> Path:
        """Sign the host key with the CA key at ``ca_key`` (``ssh-keygen -s``) and restart sshd
        presenting that certificate; the plain key stays offered as well."""
        subprocess.run(
            ["ssh-keygen", "-q", "-s", str(ca_key), "-I", "gputui-test-host", "-h",
             "-n", principals or self.host, str(self.host_pub_path)],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        self.host_certificate = self.root / "ssh_host_ed25519_key-cert.pub"
        self.restart()
        return self.host_certificate

    def kill_connections(self) -> None:
        """Kill every per-connection sshd (and its sessions), keeping the listener.

        The connections die with SIGKILL, as a dropped link does; the commands they ran then get
        a moment's SIGTERM before SIGKILL, as in :meth:`stop`: a login shell killed outright
        while ``pyenv rehash`` holds its lock leaves the lock behind for every later shell.
        """
        children = self._descendants()
        connections = [c for c in children if is_sshd(c)]
        commands = [c for c in children if not is_sshd(c)]
        for process in [*connections, *commands]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL if process in connections else signal.SIGTERM)
        psutil.wait_procs(commands, timeout=0.3)
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.01)

    # -- internals -------------------------------------------------------------------------
    def _descendants(self) -> list[psutil.Process]:
        """The processes under the listener: per-connection sshds and the commands they run."""
        if self._process is None or self._process.poll() is not None:
            return []
        try:
            return psutil.Process(self._process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def _end_commands(self) -> None:
        commands = [c for c in self._descendants() if not is_sshd(c)]
        for command in commands:
            with contextlib.suppress(psutil.NoSuchProcess):
                command.send_signal(signal.SIGTERM)
        psutil.wait_procs(commands, timeout=3)

    def _write_config(self) -> None:
        path_value = f"{self.bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
        certificate = self.host_certificate
        self.config_path.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.host}",
                    *(f"HostKey {p}" for p in self.host_key_paths),
                    *([f"HostCertificate {certificate}"] if certificate else []),
                    f"PidFile {self.root / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "UseDNS no",
                    "PrintMotd no",
                    "AllowTcpForwarding yes",
                    "MaxStartups 100",
                    "MaxSessions 50",
                    "LogLevel VERBOSE",
                    "Subsystem sftp internal-sftp",
                    f'SetEnv "PATH={path_value}"',
                    "",
                ]
            )
        )

    def _launch(self) -> bool:
        """Start sshd; True once it answers with its banner, False if the port was taken."""
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                [*self.launcher, SSHD, "-D", "-f", str(self.config_path),
                 "-E", str(self.log_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            if self._answers():
                return True
            time.sleep(0.02)
        self.stop()
        return False

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                return sock.recv(8).startswith(b"SSH-2.0")
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"


def _alive(process: psutil.Process) -> bool:
    """Running, as opposed to gone or a zombie waiting for a parent that may never reap it."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def is_sshd(process: psutil.Process) -> bool:
    """An sshd process (listener, or one serving a connection), not a command it started."""
    try:
        command = process.cmdline()
        return process.name() == "sshd" or (bool(command) and command[0].startswith("sshd"))
    except psutil.Error:
        return False


@atexit.register
def _stop_leftovers() -> None:
    """Never leave an sshd behind, even when a test run is interrupted."""
    for server in list(_RUNNING):
        server.stop()
