"""The registry describes every seed model as data."""

import re

import pytest

import segkit
from segkit.models.lookup import get_model
from segkit.models.registry import GROUPS, MODELS

SEED = ["u2net", "u2netp", "u2net_human_seg", "u2net_cloth_seg", "silueta", "isnet-general-use",
        "isnetis", "modnet-p", "modnet-w"]


def test_list_models_is_the_seed_order():
    assert segkit.list_models()[:9] == SEED


@pytest.mark.parametrize("spec", list(MODELS.values()), ids=list(MODELS))
def test_every_entry_is_complete(spec):
    assert spec.description and len(spec.description) < 100
    assert re.fullmatch(r"(md5:[0-9a-f]{32}|sha256:[0-9a-f]{64})", spec.weights.checksum)
    assert spec.weights.sources and spec.weights.size_mb > 0
    assert spec.weights.sources[0].location.startswith("https://")
    assert spec.output in ("minmax", "sigmoid_minmax", "classes", "matte", "prompted")
    assert spec.group in GROUPS and spec.licence
    assert spec.preprocess.size >= 32


def test_rembg_checksums_match_rembg_itself():
    """Our checksums, URLs and file names are the ones rembg's own session classes use."""
    import inspect

    from rembg.sessions import sam, sessions_class

    checked = set()
    for session_class in sessions_class:
        name = {"isnet-anime": "isnetis"}.get(session_class.name(), session_class.name())
        if name in MODELS and not MODELS[name].converter and name != "sam":
            source = inspect.getsource(session_class.download_models)
            w = MODELS[name].weights
            assert w.checksum in source and w.sources[0].location in source, name
            assert w.filename == f"{session_class.name()}.onnx", name  # rembg's own name: one shared cache
            checked.add(name)
    for w in MODELS["sam"].files:
        assert sam.SAM_CHECKSUMS[w.filename] == w.checksum
    assert checked | {"sam", "birefnet-general-fp16", "modnet-p", "modnet-w"} == set(MODELS)


def test_every_local_rembg_model_is_here_by_its_rembg_name():
    from rembg.sessions import sessions

    local = {n for n, c in sessions.items() if c.is_local() and not n.endswith("_custom")}
    assert local == {spec.aliases[0] if spec.aliases else n for n, spec in MODELS.items() if "modnet" not in n}


def test_isnetis_runs_isnet_anime_and_accepts_the_alias():
    assert get_model("isnet-anime") is get_model("isnetis")
    assert get_model("isnetis").weights.filename == "isnet-anime.onnx"


def test_unknown_model_names_the_choices():
    with pytest.raises(segkit.UnknownModelError, match="unknown model 'u3net'.*u2netp"):
        get_model("u3net")
    with pytest.raises(ValueError):
        segkit.segment([], model="nope")


def test_u2net_cloth_seg_has_three_labelled_masks():
    spec = get_model("u2net_cloth_seg")
    assert spec.output == "classes"
    assert spec.mask_labels == ("upper body", "lower body", "full body")
