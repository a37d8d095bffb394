"""Static checks of docker-compose.yml, for CI machines without a Docker engine. Three checkers, each with its own job:

* ``schema``: the Compose Specification JSON Schema (vendored from compose-go, ``compose-spec.json`` beside this file)
  on the file after variable interpolation from ``.env.example``: unknown keys (a typo), wrong types.
* ``rules``: the project's own conventions, which no schema states (each is one function below): every image pinned
  to an explicit tag (never ``latest``), every service with a healthcheck or marked one-shot (label
  ``fp.one-shot: "true"`` and ``restart: "no"``), every ``depends_on`` naming a service with the right condition,
  every published port bound to 127.0.0.1, a memory limit on every service and the core profile within its budget;
  the images a built service's Dockerfile starts ``FROM`` are pinned too.
* ``compose-go``: the Go program beside this file loads the file with compose-go, the library ``docker compose``
  itself uses, exactly as ``docker compose --env-file .env.example [--profile ...] config`` would: it also catches
  what the schema cannot (a bad duration such as ``interval: banana``, a ``depends_on`` naming no service). The
  binary is built once per go.sum/source digest and cached under ``.tools/``.

Usage: ``.venv/bin/python tools/compose-check/check.py [--file docker-compose.yml] [--env-file .env.example]``
prints every problem as ``checker: where: what`` and exits 1 when there is one (2 when Go is missing and
``CI=true``: there the compose-go check may never be skipped).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_FILE = REPO_ROOT / ".env.example"
SCHEMA_FILE = HERE / "compose-spec.json"
GO_SOURCES = ("go.mod", "go.sum", "main.go")
BINARY_CACHE = REPO_ROOT / ".tools"

#: Memory the services without a profile (what `docker compose up` starts) may add up to, in MiB.
CORE_MEMORY_BUDGET_MIB = 6 * 1024
ONE_SHOT_LABEL = "fp.one-shot"
METRICS_PORT_LABEL = "fp.metrics.port"
METRICS_PATH_LABEL = "fp.metrics.path"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Problem:
    """One finding: which checker found it, where (service or key path) and what is wrong."""

    checker: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.checker}: {self.where}: {self.message}"


class GoMissingError(RuntimeError):
    """No ``go`` on PATH: the compose-go check cannot be built."""


# ---- loading ------------------------------------------------------------------------------------------------------
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
                       r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of an env file (comments and blank lines skipped), as compose reads ``--env-file``."""
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{number}: expected KEY=value, got {line!r}")
        env[key.strip()] = value.strip().strip("'\"")
    return env


def interpolate(value: Any, env: Mapping[str, str], where: str = "") -> Any:
    """Compose's variable interpolation on every string of a loaded file: ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?error}``, ``$VAR`` and ``$$`` (a literal ``$``)."""
    if isinstance(value, dict):
        return {key: interpolate(item, env, f"{where}.{key}" if where else str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env, f"{where}[{index}]") for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        if op in (":-", "-"):
            missing = current is None or (op == ":-" and current == "")
            return arg if missing else str(current)
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise ValueError(f"{where}: required variable {name} is not set: {arg}")
            return current
        return current or ""

    return _VARIABLE.sub(substitute, value)


def load_compose(path: Path = COMPOSE_FILE, env_file: Path = ENV_FILE) -> dict[str, Any]:
    """The file as a mapping (YAML merge keys resolved), with variables interpolated from ``env_file``."""
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the top level must be a mapping")
    return interpolate(raw, read_env_file(env_file))


# ---- checker 1: the compose-spec JSON Schema ----------------------------------------------------------------------
def schema_problems(model: Mapping[str, Any], schema_file: Path = SCHEMA_FILE) -> list[Problem]:
    """Every violation of the Compose Specification schema (all of them, not only the first)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(schema_file.read_text()))
    problems = []
    for error in sorted(validator.iter_errors(model), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        problems.append(Problem("schema", where, error.message))
    return problems


# ---- checker 2: the project's rules -------------------------------------------------------------------------------
def _services(model: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    services = model.get("services") or {}
    return {name: (spec or {}) for name, spec in services.items()} if isinstance(services, dict) else {}


def labels_of(spec: Mapping[str, Any]) -> dict[str, str]:
    """A service's labels, given as a mapping or as a list of ``key=value``."""
    labels = spec.get("labels") or {}
    if isinstance(labels, list):
        return dict(str(item).partition("=")[::2] for item in labels)
    return {str(key): str(value) for key, value in labels.items()}


def is_one_shot(spec: Mapping[str, Any]) -> bool:
    return labels_of(spec).get(ONE_SHOT_LABEL) == "true"


def image_tag(image: str) -> str | None:
    """The tag of an image reference (``None`` when it has none); a digest (``@sha256:...``) counts as a pin."""
    name, _, digest = image.partition("@")
    if digest:
        return digest
    last = name.rsplit("/", 1)[-1]
    return last.partition(":")[2] or None


def check_images_pinned(services: Mapping[str, dict[str, Any]]) -> Iterator[Problem]:
    for name, spec in services.items():
        image = spec.get("image")
        if not image:
            yield Problem("rules", name, "no `image`: name every image (a built one too) with an explicit tag")
            continue
        tag = image_tag(str(image))
        if tag is None:
            yield Problem("rules", name, f"image {image!r} has no tag: pin an exact version")
        elif tag == "latest":
            yield Problem("rules", name, f"image {image!r} uses `latest`: pin an exact version")


def check_healthchecks(services: Mapping[str, dict[str, Any]]) -> Iterator[Problem]:
    for name, spec in services.items():
        health = spec.get("healthcheck") or {}
        has_check = bool(health.get("test")) and not health.get("disable") and health.get("test") != ["NONE"]
        if is_one_shot(spec):
            if spec.get("restart") != "no":
                yield Problem("rules", name, f'one-shot service (label {ONE_SHOT_LABEL}) needs restart: "no"')
            continue
        if not has_check:
            yield Problem("rules", name, "no healthcheck: add one, or mark a run-to-completion service one-shot "
                                         f'(label {ONE_SHOT_LABEL}: "true" and restart: "no")')


def check_depends_on(services: Mapping[str, dict[str, Any]]) -> Iterator[Problem]:
    for name, spec in services.items():
        depends = spec.get("depends_on") or {}
        entries = {dep: {} for dep in depends} if isinstance(depends, list) else depends
        for dependency, options in entries.items():
            if dependency not in services:
                yield Problem("rules", f"{name}.depends_on", f"names {dependency!r}, which is not a service "
                                                             f"(services: {', '.join(sorted(services))})")
                continue
            wanted = ("service_completed_successfully" if is_one_shot(services[dependency])
                      else "service_healthy")
            condition = (options or {}).get("condition", "service_started")
            if condition != wanted:
                yield Problem("rules", f"{name}.depends_on.{dependency}", f"condition {condition!r}: use {wanted!r}")
            if not spec.get("profiles") and services[dependency].get("profiles"):
                yield Problem("rules", f"{name}.depends_on.{dependency}",
                              f"a core service depends on {dependency!r}, which only runs under profiles "
                              f"{services[dependency]['profiles']}")


def published_host_ips(port: Any) -> list[str | None]:
    """The host address each published port binds (``None`` = all interfaces); an unpublished one gives nothing."""
    if isinstance(port, dict):
        return [port.get("host_ip")] if port.get("published") is not None or port.get("host_ip") else [None]
    text = str(port)
    if text.startswith("["):  # [::1]:8080:80
        return [text[1:text.index("]")]]
    parts = text.split("/")[0].split(":")
    if len(parts) == 3:
        return [parts[0]]
    return [None]  # "8080:80" or "80": every interface


def check_ports_loopback(services: Mapping[str, dict[str, Any]]) -> Iterator[Problem]:
    for name, spec in services.items():
        for port in spec.get("ports") or []:
            for host_ip in published_host_ips(port):
                if host_ip != LOOPBACK:
                    where = host_ip or "every interface"
                    yield Problem("rules", f"{name}.ports", f"{port!r} is published on {where}: bind it to "
                                                           f'{LOOPBACK} ("{LOOPBACK}:HOST:CONTAINER")')


_MEMORY = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[bkmg]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNIT = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def memory_bytes(value: Any) -> int:
    """Compose's memory notation (``768m``, ``1.5g``, ``1024``) in bytes."""
    if isinstance(value, int):
        return value
    match = _MEMORY.match(str(value))
    if not match:
        raise ValueError(f"not a memory size: {value!r}")
    return int(float(match.group("number")) * _UNIT[match.group("unit").lower()])


def memory_limit(spec: Mapping[str, Any]) -> int | None:
    limit = (((spec.get("deploy") or {}).get("resources") or {}).get("limits") or {}).get("memory")
    return None if limit is None else memory_bytes(limit)


def core_services(model: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The services `docker compose up` starts with no profile enabled."""
    return {name: spec for name, spec in _services(model).items() if not spec.get("profiles")}


def core_memory_mib(model: Mapping[str, Any]) -> float:
    """The sum of the core services' memory limits, in MiB (one-shot services included: a safe upper bound)."""
    return sum(memory_limit(spec) or 0 for spec in core_services(model).values()) / 1024**2


def check_memory_limits(services: Mapping[str, dict[str, Any]]) -> Iterator[Problem]:
    for name, spec in services.items():
        try:
            limit = memory_limit(spec)
        except ValueError as error:
            yield Problem("rules", f"{name}.deploy.resources.limits.memory", str(error))
            continue
        if limit is None:
            yield Problem("rules", name, "no memory limit: set deploy.resources.limits.memory")


def check_metrics_labels(services: Mapping[str, dict[str, Any]]) -> Iterator[Problem]:
    for name, spec in services.items():
        labels = labels_of(spec)
        port = labels.get(METRICS_PORT_LABEL)
        if port is not None and not port.isdigit():
            yield Problem("rules", f"{name}.labels", f"{METRICS_PORT_LABEL} must be a port number, got {port!r}")
        if METRICS_PATH_LABEL in labels and port is None:
            yield Problem("rules", f"{name}.labels", f"{METRICS_PATH_LABEL} without {METRICS_PORT_LABEL}")


SERVICE_RULES: tuple[Callable[[Mapping[str, dict[str, Any]]], Iterator[Problem]], ...] = (
    check_images_pinned, check_healthchecks, check_depends_on, check_ports_loopback, check_memory_limits,
    check_metrics_labels,
)


_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<stage>\S+))?", re.IGNORECASE)


def check_dockerfiles_pinned(services: Mapping[str, dict[str, Any]], base_dir: Path) -> Iterator[Problem]:
    """The images a built service starts FROM are pinned too (an earlier build stage may be named instead)."""
    dockerfiles = set()
    for spec in services.values():
        build = spec.get("build")
        if isinstance(build, str):
            build = {"context": build}
        if isinstance(build, dict):
            dockerfiles.add(base_dir / build.get("context", ".") / build.get("dockerfile", "Dockerfile"))
    for dockerfile in sorted(dockerfiles):
        if not dockerfile.is_file():
            yield Problem("rules", str(dockerfile), "the Dockerfile a service builds from does not exist")
            continue
        stages: set[str] = set()
        for number, line in enumerate(dockerfile.read_text().splitlines(), start=1):
            match = _FROM.match(line)
            if not match:
                continue
            image = match.group("image")
            if image.lower() not in stages and "$" not in image:
                tag = image_tag(image)
                if tag in (None, "latest"):
                    yield Problem("rules", f"{dockerfile.name}:{number}", f"FROM {image}: pin an exact version")
            if match.group("stage"):
                stages.add(match.group("stage").lower())


def rule_problems(model: Mapping[str, Any], base_dir: Path = REPO_ROOT) -> list[Problem]:
    """Every rule over every service (whatever its profile), the Dockerfiles they build (relative to ``base_dir``,
    the compose file's folder), then the core profile's memory budget."""
    services = _services(model)
    if not services:
        return [Problem("rules", "services", "no services")]
    problems = [problem for rule in SERVICE_RULES for problem in rule(services)]
    problems += check_dockerfiles_pinned(services, base_dir)
    if not any(p.where.endswith("memory") for p in problems):
        total = core_memory_mib(model)
        if total > CORE_MEMORY_BUDGET_MIB:
            problems.append(Problem("rules", "services", f"the core profile's memory limits add up to {total:.0f} "
                                                         f"MiB, over the {CORE_MEMORY_BUDGET_MIB} MiB budget"))
    return problems


# ---- checker 3: compose-go ----------------------------------------------------------------------------------------
def go_sources_digest() -> str:
    digest = hashlib.sha256()
    for name in GO_SOURCES:
        digest.update(name.encode() + b"\0" + (HERE / name).read_bytes())
    return digest.hexdigest()[:16]


def find_go() -> str | None:
    """``go`` on PATH, else the official installer's location (a shell that did not source its profile lacks it)."""
    return shutil.which("go") or next((str(p) for p in (Path("/usr/local/go/bin/go"),) if p.is_file()), None)


def compose_go_binary(cache_dir: Path = BINARY_CACHE, *, timeout_s: float = 900.0) -> Path:
    """The compose-check binary, built with ``go build`` on first use and cached by the digest of its sources
    (go.mod, go.sum, main.go), so editing the program or bumping compose-go rebuilds it. Raises
    :class:`GoMissingError` when Go is not installed."""
    binary = cache_dir / "compose-check" / f"compose-check-{go_sources_digest()}"
    if binary.is_file():
        return binary
    go = find_go()
    if go is None:
        raise GoMissingError("`go` is not on PATH: the compose-go check needs Go (https://go.dev/dl)")
    binary.parent.mkdir(parents=True, exist_ok=True)
    with (binary.parent / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test processes: one builds, the others wait and reuse it
        if binary.is_file():
            return binary
        partial = binary.with_name(f".{binary.name}.partial")
        result = subprocess.run([go, "build", "-trimpath", "-o", str(partial), "."], cwd=HERE, capture_output=True,
                                text=True, timeout=timeout_s, env={**os.environ, "GOFLAGS": "-mod=readonly"},
                                check=False)
        if result.returncode != 0:
            raise RuntimeError(f"go build of {HERE} failed:\n{result.stderr[-3000:]}")
        partial.rename(binary)
    return binary


def compose_go_problems(compose_file: Path = COMPOSE_FILE, env_file: Path = ENV_FILE, *,
                        binary: Path | None = None, profile_sets: tuple[str, ...] = ("", "*")) -> list[Problem]:
    """Load the file with compose-go once per profile set ("" = core, "*" = every profile)."""
    binary = binary or compose_go_binary()
    command = [str(binary), "-f", str(compose_file), "-env-file", str(env_file)]
    for profiles in profile_sets:
        command += ["-profiles", profiles]
    # Only the environment compose itself would see from a clean shell: no stray variable changes the result.
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)
    if result.returncode == 0:
        return []
    return [Problem("compose-go", compose_file.name, (result.stderr or result.stdout).strip())]


# ---- the command --------------------------------------------------------------------------------------------------
def check_all(compose_file: Path = COMPOSE_FILE, env_file: Path = ENV_FILE) -> tuple[list[Problem], str | None]:
    """Every problem of the three checkers, and why compose-go did not run (``None`` when it ran)."""
    model = load_compose(compose_file, env_file)
    problems = schema_problems(model) + rule_problems(model, compose_file.parent)
    try:
        problems += compose_go_problems(compose_file, env_file)
        skipped = None
    except GoMissingError as error:
        skipped = str(error)
    return problems, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=COMPOSE_FILE)
    parser.add_argument("--env-file", type=Path, default=ENV_FILE)
    args = parser.parse_args(argv)
    problems, skipped = check_all(args.file, args.env_file)
    for problem in problems:
        print(problem, file=sys.stderr)
    if skipped:
        print(f"compose-go: not run: {skipped}", file=sys.stderr)
        if os.environ.get("CI") == "true":
            return 2
    if problems:
        return 1
    model = load_compose(args.file, args.env_file)
    print(f"ok: {args.file.name}: {len(_services(model))} services, core profile memory limits "
          f"{core_memory_mib(model):.0f} MiB of {CORE_MEMORY_BUDGET_MIB}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
