"""Model Garden experiment YAML: load with strict overrides, dump as a valid ``--config_file``.

A tfod-seg experiment file is an ordinary Model Garden ``--config_file`` (the YAML that
``python -m official.vision.train --experiment=<name> --config_file=<yaml>`` accepts) plus one
header comment line naming the registered experiment it overrides::

    # tfod-seg experiment: maskrcnn_resnetfpn_coco
    task:
      model:
        num_classes: 4
    ...

Loading builds ``official.core.exp_factory.get_exp_config(name)`` and applies the YAML with
Model Garden's own strict override (``official.modeling.hyperparams.override_params_dict(...,
is_strict=True)``), the same call ``official.core.train_utils.ExperimentParser`` makes for
``--config_file``. Before that, every key is checked against the config tree so an unknown key
is reported as ``file:line: unknown key 'task.model.nm_classes'; nearest valid keys: ...``
instead of Model Garden's bare ``KeyError`` (and a key below a field that is ``None`` by
default, which Model Garden would accept silently, is checked too).

Model Garden is imported inside the functions: importing this module stays light. Files are read
and written through `tfod_seg.io` (local paths or URLs).
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from tfod_seg import io
from tfod_seg.errors import ConfigError

HEADER_RE = re.compile(r"^#\s*tfod-seg experiment:\s*(?P<name>[A-Za-z0-9_.\-]+)\s*$")
_MISSING = object()


# -- Model Garden access (lazy) ------------------------------------------------------------
def _register_experiments() -> None:
    """Import the config modules that register the vision experiments (maskrcnn_* etc.)."""
    import official.vision.configs  # noqa: F401  (registers experiments with exp_factory)


def known_experiments(prefix: str = "") -> List[str]:
    """Registered Model Garden experiment names starting with ``prefix`` (sorted)."""
    _register_experiments()
    from official.core import exp_factory

    names = sorted(exp_factory._REGISTERED_CONFIGS)  # noqa: SLF001 (no public listing exists)
    return [n for n in names if n.startswith(prefix)]


def base_experiment(name: str, source: str = "<experiment>"):
    """``exp_factory.get_exp_config(name)``; an unknown name is a ConfigError listing the nearest."""
    _register_experiments()
    from official.core import exp_factory

    try:
        return exp_factory.get_exp_config(name)
    except LookupError:
        names = known_experiments()
        near = difflib.get_close_matches(name, names, n=5, cutoff=0.5) or [n for n in names if "rcnn" in n]
        raise ConfigError(
            f"{source}: unknown Model Garden experiment {name!r}; nearest registered: {', '.join(near)}"
        ) from None


def _yaml_loader():
    """Model Garden's YAML loader (it resolves ``1e-4`` as a float, unlike PyYAML's default)."""
    from official.modeling.hyperparams import params_dict

    return getattr(params_dict, "_LOADER", None)


def parse_yaml_text(text: str, source: str) -> Tuple[Dict[str, Any], Dict[str, int]]:
    """Parse YAML with Model Garden's loader; return (mapping, {dotted key: line number})."""
    import yaml

    loader = _yaml_loader() or yaml.SafeLoader
    try:
        data = yaml.load(text, Loader=loader)
        node = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a YAML mapping (task: ..., trainer: ...), got {type(data).__name__}")
    lines: Dict[str, int] = {}

    def walk(n, prefix):
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = f"{prefix}.{k.value}" if prefix else str(k.value)
                lines[key] = k.start_mark.line + 1
                walk(v, key)

    walk(node, "")
    return data, lines


def read_header(path: str | os.PathLike) -> Optional[str]:
    """The experiment name from the ``# tfod-seg experiment: <name>`` line, or None."""
    for line in io.read_text(path, ConfigError, "experiment file").splitlines():
        m = HEADER_RE.match(line.strip())
        if m:
            return m.group("name")
        if line.strip() and not line.lstrip().startswith("#"):
            break
    return None


def read_header_comments(path: str | os.PathLike) -> List[str]:
    """The leading comment block of a file, without the ``#`` (for `tfod-seg templates`)."""
    out = []
    for line in io.read_text(path, ConfigError, "config file").splitlines():
        s = line.strip()
        if not s.startswith("#"):
            if s:
                break
            continue
        out.append(s[1:].strip())
    return out


# -- key checking ---------------------------------------------------------------------------
def _is_config(obj) -> bool:
    from official.modeling.hyperparams import base_config

    return isinstance(obj, base_config.Config)


def config_keys(cfg, prefix: str = "") -> List[str]:
    """Every dotted key of a config tree (nodes and leaves), including inactive one-of branches."""
    keys = []
    for k, v in cfg.__dict__.items():
        if k in getattr(cfg, "RESERVED_ATTR", ()) or k.startswith("_"):
            continue
        key = f"{prefix}.{k}" if prefix else k
        keys.append(key)
        if _is_config(v):
            keys.extend(config_keys(v, key))
    return keys


def nearest_keys(key: str, cfg, n: int = 3, *, parent=None, parent_prefix: str = "") -> List[str]:
    """The valid dotted keys closest to ``key``: siblings first (in ``parent``, the sub-config the
    key was found under, when given), then keys with a similar last name anywhere in the tree."""
    allk = config_keys(cfg)
    prefix, _, leaf = key.rpartition(".")
    if parent is not None:
        siblings = [f"{parent_prefix}.{k}" if parent_prefix else k for k in config_keys(parent) if "." not in k]
    else:
        siblings = [k for k in allk if k.rpartition(".")[0] == prefix]
    near = difflib.get_close_matches(key, siblings, n=n, cutoff=0.6)
    if len(near) < n:
        by_leaf: Dict[str, List[str]] = {}
        for k in allk:
            by_leaf.setdefault(k.rpartition(".")[2], []).append(k)
        for m in difflib.get_close_matches(leaf, list(by_leaf), n=n, cutoff=0.75):
            near.extend(x for x in by_leaf[m] if x not in near)
    if len(near) < n:
        near.extend(x for x in difflib.get_close_matches(key, allk, n=n, cutoff=0.6) if x not in near)
    return near[:n] if near else siblings[:n]


def _subconfig(cfg, k):
    """The Config instance a dict under key ``k`` would be merged into (or None for a plain value)."""
    cur = cfg.__dict__.get(k)
    if _is_config(cur):
        return cur
    try:
        typ = cfg._get_subconfig_type(k)  # noqa: SLF001 (Model Garden's own type lookup)
    except Exception:  # pragma: no cover - defensive: unusual annotations
        return None
    try:
        from official.modeling.hyperparams import base_config

        if isinstance(typ, type) and issubclass(typ, base_config.Config):
            return typ()
    except TypeError:
        return None
    return None


def _find_unknown(cfg, data: Mapping[str, Any], prefix: str = ""):
    bad = []  # (dotted key, the config it was looked up in, that config's dotted prefix)
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if not isinstance(k, str) or k not in cfg.__dict__ or k in getattr(cfg, "RESERVED_ATTR", ()):
            bad.append((key, cfg, prefix))
            continue
        if isinstance(v, Mapping):
            sub = _subconfig(cfg, k)
            if sub is not None:
                bad.extend(_find_unknown(sub, v, key))
        elif isinstance(v, (list, tuple)) and v and all(isinstance(e, Mapping) for e in v):
            sub = _subconfig(cfg, k)
            cur = cfg.__dict__.get(k)
            for i, e in enumerate(v):
                target = cur[i] if isinstance(cur, (list, tuple)) and i < len(cur) and _is_config(cur[i]) else sub
                if target is not None:
                    bad.extend(_find_unknown(target, e, f"{key}[{i}]"))
    return bad


# Numeric and boolean fields only: string fields are often Union[str, List[str]]
# (task.init_checkpoint_modules: 'all' or ['backbone', 'decoder']).
_SCALAR_TYPES = ((bool, (bool,)), (int, (int,)), (float, (int, float)))


def _find_wrong_types(cfg, data: Mapping[str, Any], prefix: str = ""):
    """``(dotted key, value, expected type name)`` for values whose type cannot be the field's
    (Model Garden's override stores them anyway: ``train_steps: 'abc'`` would crash later)."""
    bad = []
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        cur = cfg.__dict__.get(k) if isinstance(k, str) else None
        if isinstance(v, Mapping):
            sub = _subconfig(cfg, k) if isinstance(k, str) and k in cfg.__dict__ else None
            if sub is not None:
                bad.extend(_find_wrong_types(sub, v, key))
            continue
        if cur is None or v is None or _is_config(cur):
            continue
        for typ, accepted in _SCALAR_TYPES:
            if isinstance(cur, typ):
                if not isinstance(v, accepted) or (typ is not bool and isinstance(v, bool)):
                    bad.append((key, v, typ.__name__))
                break
    return bad


def find_unknown_keys(cfg, data: Mapping[str, Any]) -> List[str]:
    """Dotted keys in ``data`` (nested mapping) that the config tree ``cfg`` does not have."""
    return [b[0] for b in _find_unknown(cfg, data)]


def _unknown_key_error(cfg, bad, source: str, lines: Mapping[str, int], experiment: str):
    msgs = []
    for key, parent, parent_prefix in bad:
        at = f"{source}:{lines[key]}" if key in lines else source
        near = nearest_keys(re.sub(r"\[\d+\]", "", key), cfg, parent=parent,
                            parent_prefix=re.sub(r"\[\d+\]", "", parent_prefix))
        msgs.append(f"{at}: unknown key {key!r} for experiment {experiment}; nearest valid keys: {', '.join(near)}")
    return ConfigError("\n".join(msgs))


def nest_dotted(flat: Mapping[str, Any]) -> Dict[str, Any]:
    """``{'task.model.num_classes': 3}`` → ``{'task': {'model': {'num_classes': 3}}}`` (nested dicts pass)."""
    out: Dict[str, Any] = {}
    for key, value in flat.items():
        if isinstance(value, Mapping):
            value = nest_dotted(value)
        parts = str(key).split(".")
        d = out
        for p in parts[:-1]:
            nxt = d.get(p)
            if not isinstance(nxt, dict):
                nxt = d[p] = {}
            d = nxt
        if isinstance(value, dict) and isinstance(d.get(parts[-1]), dict):
            _deep_merge(d[parts[-1]], value)
        else:
            d[parts[-1]] = value
    return out


def _deep_merge(a: Dict[str, Any], b: Mapping[str, Any]) -> None:
    for k, v in b.items():
        if isinstance(v, Mapping) and isinstance(a.get(k), dict):
            _deep_merge(a[k], v)
        else:
            a[k] = v


def apply_overrides(cfg, data: Mapping[str, Any], *, source: str, experiment: str,
                    lines: Optional[Mapping[str, int]] = None):
    """Apply ``data`` (nested or dotted keys) to ``cfg`` with Model Garden's strict override.

    Unknown keys raise ConfigError naming ``source`` (and the line when known) and the nearest
    valid keys; any other override failure is a ConfigError naming ``source``.
    """
    from official.modeling import hyperparams

    data = nest_dotted(data)
    unknown = _find_unknown(cfg, data)
    if unknown:
        raise _unknown_key_error(cfg, unknown, source, lines or {}, experiment)
    wrong = _find_wrong_types(cfg, data)
    if wrong:
        raise ConfigError("\n".join(f"{source}: {key}: {value!r} is not a valid {typ} (expected a {typ} value)"
                                     for key, value, typ in wrong))
    try:
        hyperparams.override_params_dict(cfg, data, is_strict=True)
    except KeyError as e:  # Model Garden's strict check (should have been caught above)
        raise ConfigError(f"{source}: {e.args[0] if e.args else e}") from None
    except (ValueError, TypeError, AttributeError) as e:
        raise ConfigError(f"{source}: cannot apply to experiment {experiment}: {e}") from None
    return cfg


def validate(cfg, source: str) -> None:
    """``cfg.validate()`` (Model Garden's restrictions), errors as ConfigError naming ``source``."""
    try:
        cfg.validate()
    except (KeyError, ValueError, AttributeError, AssertionError) as e:
        raise ConfigError(f"{source}: experiment fails Model Garden's validation: {e}") from None


def load_experiment(yaml_path: str | os.PathLike, overrides: Optional[Mapping[str, Any]] = None):
    """Load a tfod-seg Model Garden experiment YAML.

    Returns ``(experiment_name, cfg)`` where ``cfg`` is an
    ``official.core.config_definitions.ExperimentConfig`` built as
    ``exp_factory.get_exp_config(name)`` + the YAML (strict) + ``overrides`` (strict; nested
    dict or dotted keys such as ``{"trainer.train_steps": 100}``), then validated.
    """
    path = os.fspath(yaml_path)
    text = io.read_text(path, ConfigError, "experiment file")
    name = None
    for line in text.splitlines():
        m = HEADER_RE.match(line.strip())
        if m:
            name = m.group("name")
            break
    if name is None:
        raise ConfigError(
            f"{path}: no '# tfod-seg experiment: <name>' header line; add one naming the Model Garden "
            f"experiment this file overrides, e.g. '# tfod-seg experiment: maskrcnn_resnetfpn_coco'"
        )
    data, lines = parse_yaml_text(text, path)
    cfg = base_experiment(name, source=path)
    apply_overrides(cfg, data, source=path, experiment=name, lines=lines)
    if overrides:
        apply_overrides(cfg, overrides, source=f"{path} (overrides)", experiment=name)
    validate(cfg, path)
    return name, cfg


# -- writing --------------------------------------------------------------------------------
def _diff(new: Any, old: Any) -> Any:
    """The part of ``new`` (as_dict) that differs from ``old``; _MISSING when equal."""
    if isinstance(new, dict) and isinstance(old, dict):
        out = {}
        for k, v in new.items():
            d = _diff(v, old.get(k, _MISSING)) if k in old else v
            if d is not _MISSING:
                out[k] = d
        return out if out else _MISSING
    if _plain(new) == _plain(old):
        return _MISSING
    return new


def _plain(v):
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _dumper():
    """A SafeDumper writing mappings as blocks and lists inline (``input_size: [640, 640, 3]``)."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _list(dumper, data):
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data,
                                         flow_style=not any(isinstance(x, (dict, list)) for x in data))

    _Dumper.add_representer(list, _list)
    return _Dumper


def experiment_yaml(cfg, experiment_name: str, header: Iterable[str] = (), *, full: bool = False) -> str:
    """YAML text for ``cfg``: header comments, the experiment line, then the overrides.

    With ``full=False`` only the values that differ from ``get_exp_config(experiment_name)``
    are written (short, readable, and still a complete description given the name).
    """
    import yaml

    data = cfg.as_dict()
    if not full:
        base = base_experiment(experiment_name).as_dict()
        data = _diff(data, base)
        if data is _MISSING:
            data = {}
    data = _plain(data)
    lines = [f"# {h}".rstrip() if h else "#" for h in header]
    lines.append(f"# tfod-seg experiment: {experiment_name}")
    body = yaml.dump(data, Dumper=_dumper(), sort_keys=False, default_flow_style=False, width=100) if data else ""
    return "\n".join(lines) + "\n" + body


def dump_experiment(cfg, path: str | os.PathLike, experiment_name: str, header: Iterable[str] = (),
                    *, full: bool = False) -> str:
    """Write ``cfg`` atomically as a tfod-seg experiment YAML (see `experiment_yaml`); return the path."""
    path = os.fspath(path)
    io.atomic_write_text(path, experiment_yaml(cfg, experiment_name, header, full=full))
    return path


def train_command(path: str | os.PathLike, experiment_name: str, model_dir: str = "MODEL_DIR") -> str:
    """The Model Garden command line that trains with this file (for headers and docs)."""
    return (f"python -m official.vision.train --experiment={experiment_name} --mode=train_and_eval "
            f"--model_dir={model_dir} --config_file={os.fspath(path)}")


__all__ = [
    "load_experiment",
    "dump_experiment",
    "experiment_yaml",
    "apply_overrides",
    "base_experiment",
    "known_experiments",
    "config_keys",
    "nearest_keys",
    "read_header",
    "read_header_comments",
    "train_command",
]
