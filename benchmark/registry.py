"""Method registry: names map to ``"module:Class"`` strings, imported only when a method is asked for.

The harness never imports a method's internals: it asks the registry for a class, checks it is a
``Method``, and talks to it through that interface only. An unknown name fails with one line naming
the known methods and the closest match.

Methods from outside this repository register the same way, through the Python entry-point group
``mribench.methods`` of their own package (``name = "package.module:Class"``; see README "Adding a method"):
they are read beside the built-in table and may not take a built-in name.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
from functools import cache

from benchmark.errors import InputError
from benchmark.method import Method, TrainingStage

METHODS: dict[str, str] = {
    "zero_filled": "methods.zero_filled.adapter:ZeroFilled",
    "cs_wavelet": "methods.cs_wavelet.adapter:CSWavelet",
    "unet": "methods.unet.adapter:UNet",
    "e2evarnet": "methods.e2evarnet.adapter:E2EVarNet",
    "recurrentvarnet": "methods.recurrentvarnet.adapter:RecurrentVarNet",
    "swinunet": "methods.swinunet.adapter:SwinUNet",
    "mambarecon": "methods.mambarecon.adapter:MambaRecon",
    "diffuserecon": "methods.diffuserecon.adapter:DiffuseRecon",
    "mdpg": "methods.mdpg.adapter:MDPG",
    "nasp": "methods.nasp.variants:NASP",
    "nasp-base": "methods.nasp.variants:NASPBase",
    "nasp-base-multinomial": "methods.nasp.variants:NASPBaseMultinomial",
    "nasp-base-topkp": "methods.nasp.variants:NASPBaseTopKP",
    "nasp-base-dc": "methods.nasp.variants:NASPBaseDC",
    "nasp-nocross": "methods.nasp.variants:NASPNoCross",
    "nasp-frozenenc": "methods.nasp.variants:NASPFrozenEncoder",
    "nasp-flat": "methods.nasp.variants:NASPFlat",
}


#: Multi-stage methods: name -> stage -> "module:Class" (``train NAME --stage STAGE``). A method joins
#: ``METHODS`` once a stage reconstructs from the R = 32 input; until then only its stages train.
STAGES: dict[str, dict[str, str]] = {
    "nasp": {
        "tokenizer": "methods.nasp.adapter:TokenizerStage",
        "transformer": "methods.nasp.adapter:TransformerStage",
        "teacher": "methods.nasp.teacher:TeacherStage",
        "distill": "methods.nasp.distill:DistillStage",
        "transformer-nocross": "methods.nasp.variants:NoCrossStage",
        "transformer-frozenenc": "methods.nasp.variants:FrozenEncoderStage",
        "tokenizer-flat": "methods.nasp.variants:FlatTokenizerStage",
        "transformer-flat": "methods.nasp.variants:FlatStage",
    },
    "mdpg": {
        "autoencoder": "methods.mdpg.adapter:AutoencoderStage",
        "prior": "methods.mdpg.adapter:PriorStage",
        "unrolled": "methods.mdpg.adapter:MDPG",
    },
}


#: The entry-point group through which other packages register methods.
ENTRY_POINT_GROUP = "mribench.methods"


@cache
def registered_methods() -> dict[str, str]:
    """Name -> ``"module:Class"``: the built-in table, then every method registered under ``ENTRY_POINT_GROUP``."""
    table = dict(METHODS)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in METHODS:
            package = entry.dist.name if entry.dist else "an installed package"
            raise InputError(f"{package} registers method {entry.name!r}, a built-in name; rename its entry point")
        table[entry.name] = entry.value
    return table


def known_methods() -> list[str]:
    return sorted(registered_methods())


def check_method_name(name: str) -> str:
    """Return ``name`` if registered; otherwise raise with the closest match and the known names."""
    if name not in registered_methods():
        close = difflib.get_close_matches(name, registered_methods(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"unknown method {name!r}{hint}; known: {', '.join(known_methods())}")
    return name


def get_method_class(name: str) -> type[Method]:
    """Import and return the method class registered as ``name``."""
    module_name, class_name = registered_methods()[check_method_name(name)].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Method)) or cls.name != name:
        raise TypeError(f"registry entry {name!r} -> {registered_methods()[name]} is not a Method named {name!r}")
    return cls


def describe_methods() -> list[dict]:
    """Every registered method, then every training stage of a multi-stage method: name, kind, profiles
    and, for learned ones, each profile's shipped checkpoint as a sha256 prefix (``None`` when absent)."""
    from benchmark.io import sha256_file

    classes = [(name, get_method_class(name)) for name in known_methods()]
    classes += [
        (f"{name} --stage {stage}", get_training_class(name, stage)) for name in STAGES for stage in STAGES[name]
    ]
    rows = []
    for label, cls in classes:
        learned = issubclass(cls, TrainingStage)
        checkpoints = {}
        for profile in cls.configs if learned else ():
            path = cls.shipped_checkpoint(profile)
            checkpoints[profile] = sha256_file(path)[:12] if path.is_file() else None
        kind = ("stage" if " --stage " in label else "learned") if learned else "classical"  # mdpg: both
        rows.append({"name": label, "kind": kind, "profiles": list(cls.configs), "checkpoints": checkpoints})
    return rows


def get_training_class(name: str, stage: str | None = None) -> type[Method | TrainingStage]:
    """The class ``train`` optimises: the method itself, or the named stage of a multi-stage method."""
    if name not in STAGES:
        if stage:
            raise InputError(f"{name} trains in one stage; drop --stage")
        return get_method_class(name)
    stages = STAGES[name]
    if stage not in stages:
        raise InputError(f"{name} trains in stages: pass --stage {'|'.join(stages)}")
    module_name, class_name = stages[stage].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, TrainingStage)) or (cls.name, cls.stage) != (name, stage):
        raise TypeError(f"stage entry {name}/{stage} -> {stages[stage]} is not that stage of {name!r}")
    return cls
