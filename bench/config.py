"""Study configuration: frozen dataclasses loaded from `studies/*.toml` and validated on load.

Every field carries a one-line `doc` saying what it is and why its default (cleanrl style), and an
optional `check` that returns an error text or None. A bad file raises `ConfigError` naming the
file, the dotted key and what is allowed; nothing is ever mutated after loading.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from bench import records
from bench.errors import ConfigError

STUDIES_DIR = Path(__file__).resolve().parent.parent / "studies"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Keys added after studies were made, each with the value at which it computes what those studies
# computed: the compatibility digest leaves a key out at that value (so such studies resume), and
# the audit does not call its absence from an older trial's record drift.
NEUTRAL_WHEN_ABSENT: dict[tuple[str, str], Any] = {("study", "fixed"): {}, ("train", "g_ema"): 0.0}
# Keys that change only what is watched, never what a trial computes: left out of the compatibility
# digest and of the audit's comparison at any value, so turning them on or off never forks a study.
OBSERVATION_ONLY: tuple[tuple[str, str], ...] = (("train", "tensorboard"),)


def _opt(default: Any, doc: str, check: Callable[[Any], str | None] | None = None, **kw: Any) -> Any:
    """A dataclass field with documentation and a validation rule."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"doc": doc, "check": check}, **kw)
    return field(default=default, metadata={"doc": doc, "check": check}, **kw)


def positive(v: Any) -> str | None:
    return None if v > 0 and math.isfinite(v) else "a finite number > 0"


def non_negative(v: Any) -> str | None:
    return None if v >= 0 and math.isfinite(v) else "a finite number >= 0"


def one_of(*allowed: Any) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in allowed else "one of " + ", ".join(repr(a) for a in allowed)

    return check


def name_like(v: str) -> str | None:
    return None if NAME_RE.match(v) else "letters, digits, '_', '-', '.'; no path separators"


def registry_check(kind: str, non_empty: bool = False) -> Callable[[Any], str | None]:
    """Validate against a registry's names, read from the catalogue (registries import torch; config must not).

    Registry checks run after every cheap check of the whole file (`_validate`), so a typo or a
    wrong type is reported without importing torch; `non_empty` lists must name at least one.
    """

    def check(v: Any) -> str | None:
        from bench import registries

        names = registries.names(kind)
        values = v if isinstance(v, list) else [v]
        if non_empty and not values:
            return f"a non-empty list of {', '.join(names)}"
        dup = sorted({x for x in values if values.count(x) > 1})
        if dup:
            return f"each name once (repeated: {', '.join(map(repr, dup))})"
        bad = [x for x in values if x not in names]
        return None if not bad else f"one of {', '.join(names)} (got {', '.join(map(repr, bad))})"

    check.registry = kind  # type: ignore[attr-defined]
    return check


@dataclass(frozen=True)
class StudySection:
    name: str = _opt("", "study name; results go to results/<name>/ (defaults to the file's stem)", lambda v: None if v == "" else name_like(v))
    description: str = _opt("", "one line shown in listings and reports")
    seed: int = _opt(0, "study seed: trial n's hyperparameters and training seed derive from (seed, n)", non_negative)
    variants: list[str] = _opt(["mm_gan", "ns_gan", "wgan", "wgan_gp"], "variants run by VARIANT=all", registry_check("variants", non_empty=True))
    trials: int = _opt(5, "budget: trials per variant, identical for every variant", positive)
    space: str = _opt("narrow", "search space: 'wide' or 'narrow' (PROTOCOL.md)", one_of("wide", "narrow"))
    sampler: str = _opt("random", "Optuna sampler; 'random' is the paper's protocol (trial 0 = defaults)", registry_check("samplers"))
    pruner: str = _opt("none", "stop weak trials early on the objective at checkpoints; 'none' is the paper's protocol", registry_check("pruners"))
    budget_steps: int = _opt(0, "budget: total D steps per variant over all its trials, identical for every variant; 0 = only the trial count", non_negative)
    fixed: dict[str, Any] = _opt({}, "hyperparameters held at one value in every trial of every variant, trial 0 included, "
                                 "e.g. {learning_rate = 1e-4, beta1 = 0.5}; the rest of the space is searched", lambda v: None if all(NAME_RE.match(k) for k in v) else "hyperparameter names")
    budget_seconds: float = _opt(0.0, "budget: total device-seconds per variant; new trials start only while it fits; 0 = no limit", non_negative)
    storage: str = _opt("", "Optuna storage URL; empty = SQLite file results/<name>/optuna.db")


@dataclass(frozen=True)
class DataSection:
    dataset: str = _opt("digits5k", "dataset registry name; digits5k needs no download", registry_check("datasets"))
    root: str = _opt("", "data root for downloadable datasets; empty = $BENCH_DATA or ~/.cache/bench/data")
    workers: int = _opt(4, "DataLoader worker processes for streamed datasets (celeba); in-memory ones use none", non_negative)


@dataclass(frozen=True)
class ModelSection:
    architecture: str = _opt("infogan", "architecture registry name, identical for every variant", registry_check("architectures"))
    width: float = _opt(1.0, "channel/unit multiplier; 1.0 is the paper's width, smaller is for CPUs", positive)
    z_dim: int = _opt(64, "latent size; the paper uses 64, z ~ U(-1, 1)", positive)


@dataclass(frozen=True)
class TrainSection:
    batch_size: int = _opt(64, "batch size for every variant (the paper's 64)", positive)
    steps: int = _opt(15625, "discriminator steps per trial (MNIST: 20 epochs of 50k at batch 64)", positive)
    checkpoint_every: int = _opt(3906, "evaluate every this many D steps (about 5 epochs), and at the end", positive)
    log_every: int = _opt(100, "write loss terms to the metrics log every this many D steps", positive)
    device: str = _opt("auto", "'auto' (cuda when present, else cpu), 'cpu', 'cuda' or 'cuda:N'", lambda v: None if re.match(r"^(auto|cpu|cuda(:\d+)?)$", v) else "'auto', 'cpu', 'cuda' or 'cuda:N'")
    keep_checkpoints: bool = _opt(True, "keep G weights of every checkpoint so `bench eval` can re-evaluate them (the full training state of the latest step, resume.pt, is kept either way while the trial may be rerun)")
    deterministic: bool = _opt(False, "deterministic kernels (torch.use_deterministic_algorithms, cuDNN deterministic, CUBLAS_WORKSPACE_CONFIG) so a GPU rerun is bit-identical; off by default: slower on GPUs (seeds are always set; README: Audit a study)")
    precision: str = _opt("fp32", "'bf16': the training step under bfloat16 autocast (weights, gradients, Adam state and losses stay fp32); faster on GPUs and AMX CPUs but changes the numbers, so off by default (README: Performance)", one_of("fp32", "bf16"))
    compile: bool = _opt(False, "torch.compile G and D in place (checkpoints unchanged); pays on GPUs after a one-off compile, not on a small CPU; off by default")
    channels_last: bool = _opt(False, "NHWC layout for conv nets and image batches (tensor cores prefer it, mostly with bf16); off by default")
    g_ema: float = _opt(0.0, "decay of an exponential moving average of G's weights (Yazıcı et al. 2019), updated after every G step; the averaged copy is what evaluation scores and checkpoints keep beside G (ema-g-*.pt); 0 = off, as in the paper; 0.999 is a common choice", lambda v: None if 0 <= v < 1 else "a number in [0, 1): 0 = off, else the decay, e.g. 0.999")
    tensorboard: bool = _opt(False, "also log to TensorBoard (loss terms every log_every steps, metrics and the sample grid at checkpoints, hyperparameters) under results/<study>/tensorboard/; watching only, so it never changes a study's identity; off by default (README: TensorBoard)")
    tf32: bool = _opt(False, "TF32 tensor-core math for training convolutions (cuDNN) and float32 matmuls on Ampere and later GPUs: faster, 10-bit mantissa; off by default; evaluation always runs with TF32 off")


@dataclass(frozen=True)
class EvalSection:
    metrics: list[str] = _opt(["fid_lenet_digits5k_1k_test"], "metrics computed at every checkpoint; the first is the objective", registry_check("metrics", non_empty=True))
    generator_mode: str = _opt("eval", "'eval': BN running statistics (the paper); 'train': batch statistics, for runs shorter than BN's ~1,000-step averaging", one_of("eval", "train"))
    seed: int = _opt(42, "seed of the fixed evaluation z (the paper's 42)", non_negative)
    batch_size: int = _opt(500, "batch size for generation and feature extraction", positive)
    inception_weights: str = _opt("", "path to torch-fidelity's Inception weights (weights-inception-2015-12-05-6726825d.pth) for offline machines; empty = $BENCH_INCEPTION_WEIGHTS, else torch-fidelity downloads them")


@dataclass(frozen=True)
class StudyConfig:
    study: StudySection = field(default_factory=StudySection)
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)
    source: str = field(default="", compare=False)  # the file it came from, for messages

    @property
    def name(self) -> str:
        return self.study.name

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source")
        from bench.storage import mask  # optuna and sqlalchemy load only when a config is recorded

        d["study"]["storage"] = mask(d["study"]["storage"])  # recorded everywhere: never a password
        return d

    def digest(self) -> str:
        """A short content hash of the resolved config (file path excluded)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def replace(self, section: str, **changes: Any) -> "StudyConfig":
        """A copy with fields of one section changed (used by CLI overrides and tests)."""
        new = dataclasses.replace(getattr(self, section), **changes)
        source = self.source or "<override>"
        _validate_section(new, section, source, registry=False)
        _validate_section(new, section, source, registry=True)
        return dataclasses.replace(self, **{section: new})


_SECTION_TYPES = {"study": StudySection, "data": DataSection, "model": ModelSection, "train": TrainSection, "eval": EvalSection}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is dict:
        return "a table of name = number, true/false or string"
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Return (ok, value) for a TOML value against a field type; ints are accepted as floats."""
    origin = typing.get_origin(tp)
    if origin is dict:  # a TOML table of scalars ([study] fixed)
        ok = isinstance(value, dict) and all(isinstance(v, (int, float, bool, str)) for v in value.values())
        return ok, dict(value) if ok else value
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            return False, value
        out = []
        for item in value:
            ok, item = _coerce(item, inner)
            if not ok:
                return False, value
            out.append(item)
        return True, out
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if tp is str:
        return isinstance(value, str), value
    raise TypeError(f"unsupported config type {tp}")


def _validate_section(section: Any, name: str, source: str, registry: bool) -> None:
    """Run the section's cheap checks (registry=False) or its registry checks (registry=True)."""
    for f in dataclasses.fields(section):
        check = f.metadata.get("check")
        if check is None or hasattr(check, "registry") != registry:
            continue
        problem = check(getattr(section, f.name))
        if problem:
            raise ConfigError(f"{source}: [{name}] {f.name} = {getattr(section, f.name)!r} is not allowed; expected {problem}")


def _build_section(cls: type, raw: Any, name: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [{name}] must be a table, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown key [{name}] {key}; allowed keys: {', '.join(known)}")
        ok, coerced = _coerce(value, hints[key])
        if not ok:
            raise ConfigError(f"{source}: [{name}] {key} = {value!r} has the wrong type; expected {_type_name(hints[key])}")
        values[key] = coerced
    section = cls(**values)
    _validate_section(section, name, source, registry=False)
    return section


def parse_study(raw: dict[str, Any], source: str, default_name: str = "") -> StudyConfig:
    """Build a validated StudyConfig from a parsed TOML document."""
    unknown = [k for k in raw if k not in _SECTION_TYPES]
    if unknown:
        raise ConfigError(f"{source}: unknown section [{unknown[0]}]; allowed sections: {', '.join(_SECTION_TYPES)}")
    if not any(raw.values()):  # an empty file, or empty sections: a slip, not a request for a study of defaults
        raise ConfigError(f"{source}: the study file sets nothing; expected at least one key, such as [study] variants "
                          "and [study] trials (the README's 'Run a study' lists every key)")
    sections = {name: _build_section(cls, raw.get(name, {}), name, source) for name, cls in _SECTION_TYPES.items()}
    if raw.get("study", {}).get("name") == "":  # absent: the file's stem; explicitly empty: a slip
        raise ConfigError(f"{source}: [study] name = '' is not allowed; expected {name_like('')} "
                          f"(or leave the key out to name the study after the file, {default_name!r})")
    if not sections["study"].name:
        if not NAME_RE.match(default_name):
            raise ConfigError(f"{source}: [study] name is empty and the file name {default_name!r} is not a valid study name")
        sections["study"] = dataclasses.replace(sections["study"], name=default_name)
    cfg = StudyConfig(**sections, source=source)
    if cfg.train.checkpoint_every > cfg.train.steps:
        raise ConfigError(f"{source}: [train] checkpoint_every = {cfg.train.checkpoint_every} exceeds [train] steps = {cfg.train.steps}; expected at most steps")
    for name, section in sections.items():  # last: these read the registries' catalogue
        _validate_section(section, name, source, registry=True)
    problem = _combination_problem(cfg)
    if problem:
        raise ConfigError(f"{source}: {problem}")
    from bench import registries

    train_size = registries.dataset_train_size(cfg.data.dataset)
    if train_size and cfg.train.batch_size > train_size:
        raise ConfigError(f"{source}: [train] batch_size = {cfg.train.batch_size} is larger than the train split of [data] dataset = "
                          f"{cfg.data.dataset!r} ({train_size:,} samples); expected at most {train_size:,}")
    if 0 < cfg.study.budget_steps < cfg.train.steps:
        raise ConfigError(f"{source}: [study] budget_steps = {cfg.study.budget_steps} is less than one trial ([train] steps = {cfg.train.steps}); expected 0 or at least steps")
    return cfg


def _combination_problem(cfg: StudyConfig) -> str | None:
    """Dataset, architecture and metrics must fit together; the objective (first metric) is minimised."""
    from bench import registries

    ds = cfg.data.dataset
    shape = registries.dataset_shape(ds)
    need = registries.architecture_needs(cfg.model.architecture, ds)
    if need:
        fits = [a for a in registries.names("architectures") if registries.architecture_needs(a, ds) is None]
        return (f"[model] architecture = {cfg.model.architecture!r} takes {need}, but [data] dataset = {ds!r} has samples "
                f"of shape {shape}; expected one of {', '.join(map(repr, fits))}")
    usable = [m for m in registries.names("metrics") if registries.metric_supports(m, ds)]
    bad = [m for m in cfg.eval.metrics if not registries.metric_supports(m, ds)]
    if bad:
        return f"[eval] metrics: {bad[0]!r} does not apply to [data] dataset = {ds!r}; expected metrics from {', '.join(map(repr, usable)) or 'none'}"
    if not cfg.eval.metrics:
        return f"[eval] metrics is empty; expected at least one of {', '.join(map(repr, usable)) or 'none'} (the first is the objective)"
    objective = cfg.eval.metrics[0]
    if not registries.metric_lower_is_better(objective):
        lower = [m for m in usable if registries.metric_lower_is_better(m)]
        return (f"[eval] metrics: the first metric is the objective, which the study minimises, but {objective!r} is "
                f"higher-is-better; expected a lower-is-better metric first, one of {', '.join(map(repr, lower)) or 'none'}")
    return None


def resolve_study_path(name_or_path: str) -> Path:
    """A study is a name under studies/ (`quick`, `lucic2018/mnist`) or a path to a .toml file."""
    if name_or_path.endswith(".toml"):
        path = Path(name_or_path)
    else:
        if name_or_path.startswith("/") or ".." in Path(name_or_path).parts or not name_or_path:
            raise ConfigError(f"study {name_or_path!r}: a study name must name a file under {STUDIES_DIR} (no '..', no absolute path); or pass a path ending in .toml")
        path = STUDIES_DIR / f"{name_or_path}.toml"
    if path.exists() and not path.is_file():
        raise ConfigError(f"study file {path} is not a file; expected a .toml study file")
    if not path.is_file():
        raise ConfigError(f"study file {path} does not exist; available studies: {', '.join(list_studies()) or 'none'}")
    return path


def is_results_folder(name_or_path: str | Path) -> bool:
    """A folder a study wrote (results/<study>/): it holds the storage, a study.toml or trial folders."""
    folder = Path(name_or_path)
    return folder.is_dir() and any(_stored_config_files(folder)) or records.storage_file(folder).is_file()


def _stored_config_files(folder: Path) -> Iterator[Path]:
    """Where a results folder keeps its resolved configuration: the study.toml `bench import` writes,
    then every trial's config.json (search trials, then seed reruns), in order."""
    if (folder / records.STUDY_FILE).is_file():
        yield folder / records.STUDY_FILE
    yield from records.trial_config_files(folder)


def load_results_folder(folder: str | Path) -> StudyConfig:
    """The study a results folder holds (`bench status results/quick`), from the configuration it
    recorded: its study.toml, a trial's config.json, or the storage's own record (a study created
    with --create-only has no trial yet). The folder's name is the study's name, as records.study_dir
    lays it out; its parent is the results root the caller must use (cli.configure sets it)."""
    folder = Path(folder).resolve()
    raw: dict[str, Any] | None = None
    for path in _stored_config_files(folder):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8")) if path.suffix == ".toml" else json.loads(path.read_text())["config"]
            break
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an unreadable record: the next one says the same
    if raw is None and records.storage_file(folder).is_file():
        from bench import storage  # optuna loads only for a folder without a readable record

        raw = storage.stored_config(f"sqlite:///{records.storage_file(folder)}", folder.name)
    if raw is None:
        raise ConfigError(f"results folder {folder} holds no study configuration (no study.toml, trial config.json or "
                          "optuna.db); expected a folder a study wrote, a study name or a .toml file")
    cfg = parse_study(raw, str(folder), default_name=folder.name)
    if cfg.name != folder.name:
        raise ConfigError(f"results folder {folder} holds study {cfg.name!r}; a study's folder bears its name "
                          f"(rename the folder to {cfg.name!r} or pass the study file)")
    return cfg


def load_study(name_or_path: str) -> StudyConfig:
    """The study a command names, in any of the three ways a user has to hand: a name under studies/
    (`quick`, `cases/lucic_small`), a study file (`my.toml`), or the results folder a study wrote
    (`results/quick`). Every command that takes a study resolves it here."""
    if not str(name_or_path).endswith(".toml") and is_results_folder(name_or_path):
        return load_results_folder(name_or_path)
    path = resolve_study_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: malformed TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {e.start}); expected a TOML study file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read: {e.strerror}") from None
    return parse_study(raw, str(path), default_name=path.stem)


def list_studies() -> list[str]:
    if not STUDIES_DIR.is_dir():
        return []
    return sorted(str(p.relative_to(STUDIES_DIR).with_suffix("")) for p in STUDIES_DIR.rglob("*.toml"))


def check_value(section: str, key: str, value: Any) -> str | None:
    """What is wrong with `value` for [section] key (None when allowed): CLI overrides use the file's rules."""
    f = {f.name: f for f in dataclasses.fields(_SECTION_TYPES[section])}[key]
    check = f.metadata.get("check")
    return check(value) if check else None


def describe_fields() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, doc) for every config field, for docs and `bench list --keys`."""
    rows = []
    for name, cls in _SECTION_TYPES.items():
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            rows.append((name, f.name, default, f.metadata.get("doc", "")))
    return rows

