"""The generated bad option values (``corpus.bad_options()``) sent to both endpoints of the real
app, through gradio_client and as raw HTTP (``POST /gradio_api/call/<api>``, where NaN and
infinities go as JSON literals): each gets its own message, never Gradio's generic text, and
the server still answers. Also: what requests leave on disk, a background bomb's memory, and
what a stopped server leaves."""

from __future__ import annotations

import json
import re
import signal
import time

import pytest
import requests
from gradio_client import handle_file
from PIL import Image

import corpus
from segkit.options import names as option_names
from appserver import AppServer, folder_usage

GENERIC = "upstream Gradio app has raised an exception"
OUTPUT_MAX_MB, OUTPUT_TTL = 1, 4


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "tmp").mkdir()
    return {"gradio": root / "gradio", "outputs": root / "outputs", "files": root / "files", "tmp": root / "tmp"}


@pytest.fixture(scope="module")
def server(u2netp_path, folders):
    app = AppServer(env={"GRADIO_TEMP_DIR": str(folders["gradio"]), "SEGKIT_OUTPUT_DIR": str(folders["outputs"]),
                         "TMPDIR": str(folders["tmp"]),  # the outputs then lie outside it, as an operator's may
                         "SEGKIT_OUTPUT_MAX_MB": str(OUTPUT_MAX_MB), "SEGKIT_OUTPUT_TTL": str(OUTPUT_TTL)})
    yield app
    app.stop()


@pytest.fixture(scope="module")
def parameters(client):
    """Each endpoint's parameter names and defaults, in the positional order raw HTTP uses."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    return {name: [(p["parameter_name"], p.get("parameter_default")) for p in api[name]["parameters"]]
            for name in ("/remove_background", "/remove_background_batch")}


def sendable(options: dict, literals: bool) -> bool:
    """Whether JSON carries the values: NaN and infinities only as raw literals (``literals``),
    complex numbers never (bytes go as files)."""
    try:
        json.dumps({k: v for k, v in options.items() if not isinstance(v, bytes)}, allow_nan=literals)
        return True
    except (TypeError, ValueError):
        return False


def arguments(api: str, options: dict, photo, as_file) -> dict | None:
    """One corpus case as the endpoint's named arguments (``as_file`` turns bytes into a file
    reference); None where the endpoint has no such parameter."""
    values = dict(options)
    if set(values) - set(option_names()):  # an unknown keyword: only the library takes arbitrary keywords
        return None
    if "background" in values:
        if api == "/remove_background":  # the single-image endpoint returns the RGBA cutout only
            return None
        background = values.pop("background")
        values.update(dict(background="image", background_image=as_file(background)) if isinstance(background, bytes)
                      else dict(background="colour", colour=background))
    first = {"image": photo} if api == "/remove_background" else {"files": [photo]}
    return {**first, **values}


def raw_call(server, api: str, data: list) -> tuple[str, str]:
    """(event, message or result text) of one raw HTTP call."""
    body = json.dumps({"data": data})  # NaN and Infinity as the literals Python's JSON reader takes
    started = requests.post(f"{server.url}gradio_api/call{api}", data=body, timeout=30,
                            headers={"Content-Type": "application/json"})
    started.raise_for_status()
    stream = requests.get(f"{server.url}gradio_api/call{api}/{started.json()['event_id']}", timeout=60).text
    event = re.search(r"event: (\w+)", stream).group(1)
    payload = json.loads(stream.split("data:", 1)[1].split("\n", 1)[0])
    if event == "error":
        return event, (payload or {}).get("error") or GENERIC  # Gradio's null is its generic text
    return event, json.dumps(payload)


def upload(server, data: bytes, name: str = "photo.png") -> dict:
    path = requests.post(f"{server.url}gradio_api/upload", files={"files": (name, data)}, timeout=30).json()[0]
    return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def check(failures: list, case, message: str, expected: str) -> None:
    if GENERIC in message or not re.search(expected, message):
        failures.append(f"{case}: {message[:160]!r} does not match {expected!r}")


def answers(client, folders) -> None:
    """The server still serves a good request."""
    path = folders["files"] / "good.png"
    out = Image.open(client.predict(handle_file(str(path)), api_name="/remove_background"))
    assert out.mode == "RGBA" and out.size == (120, 90)


@pytest.fixture(scope="module", autouse=True)
def photo_file(folders):
    folders["files"].mkdir(parents=True, exist_ok=True)
    (folders["files"] / "good.png").write_bytes(corpus.encode(corpus.photo()))


def test_every_bad_option_gets_its_message_through_gradio_client(client, folders):
    def as_file(data: bytes):
        path = folders["files"] / f"background-{len(data)}.png"
        path.write_bytes(data)
        return handle_file(str(path))

    sent, failures = 0, []
    photo = folders["files"] / "good.png"
    for options, expected in corpus.bad_options():
        for api in ("/remove_background", "/remove_background_batch"):
            named = arguments(api, options, handle_file(str(photo)), as_file)
            if named is None or not sendable(options, literals=False):
                continue
            try:
                client.predict(**named, api_name=api)
                failures.append(f"{api} {options!r}: accepted")
            except Exception as exc:  # noqa: BLE001 - the message is what is checked
                check(failures, f"{api} {options!r}"[:120], str(exc), expected)
            sent += 1
    assert not failures, failures[:8]
    assert sent >= 120  # every kind of value, both endpoints
    answers(client, folders)


def test_every_bad_option_gets_its_message_over_raw_http(server, client, parameters, folders):
    photo = upload(server, (folders["files"] / "good.png").read_bytes())
    sent, failures = 0, []
    for options, expected in corpus.bad_options():
        if not sendable(options, literals=True):
            continue
        for api, params in parameters.items():
            named = arguments(api, options, photo, lambda data: upload(server, data, "background.png"))
            if named is None:
                continue
            event, message = raw_call(server, api, [named.get(name, default) for name, default in params])
            check(failures, f"{api} {options!r}"[:120], message if event == "error" else f"{event}: {message}",
                  expected)
            sent += 1
    assert not failures, failures[:8]
    assert sent >= 140
    answers(client, folders)


def test_booleans_are_true_false_or_their_strings_only(server, parameters, folders):
    photo = upload(server, (folders["files"] / "good.png").read_bytes())
    params = parameters["/remove_background"]

    def call(**values):
        return raw_call(server, "/remove_background", [{"image": photo, **values}.get(n, d) for n, d in params])

    inverted = {"alpha_matting_foreground_threshold": 10, "alpha_matting_background_threshold": 50}
    for off in (False, "false", "False"):  # matting stays off: the inverted thresholds do not matter
        assert call(alpha_matting=off, **inverted)[0] == "complete", off
    for on in (True, "true", " TRUE "):
        assert "background threshold must be the lower one" in call(alpha_matting=on, **inverted)[1], on
    for wrong in ("yes", 2, 1, 0, "1", None, [True], {"a": 1}):
        event, message = call(alpha_matting=wrong)
        assert event == "error" and message.startswith("alpha_matting: must be true or false"), (wrong, message)


def test_a_background_bomb_is_refused_before_decoding(server, client, folders):
    bomb = folders["files"] / "bomb.png"
    bomb.write_bytes(corpus.bomb_png(13000, 13000))
    photo = handle_file(str(folders["files"] / "good.png"))
    before = server.rss_kb()
    for _ in range(3):
        with pytest.raises(Exception, match=r"^background image: image is 13000x13000 = 169 MP, over the"):
            client.predict([photo], background="image", background_image=handle_file(str(bomb)),
                           api_name="/remove_background_batch")
    assert server.rss_kb() - before < 64 * 1024  # a decoded 13000x13000 picture would add 500 MB and more


def test_requests_leave_no_files_behind_and_outputs_stay_bounded(client, folders):
    """Gradio's folder gains nothing per request once a photo and its results are cached; segkit's
    request folders stay under SEGKIT_OUTPUT_MAX_MB (oldest removed first) and expire after
    SEGKIT_OUTPUT_TTL."""
    photo = handle_file(str(folders["files"] / "good.png"))
    big = folders["files"] / "big.png"
    Image.open(folders["files"] / "good.png").resize((900, 700)).save(big)
    usage = []
    for index in range(16):
        if index % 2:
            client.predict(photo, api_name="/remove_background")
        else:
            client.predict([handle_file(str(big)), photo], api_name="/remove_background_batch")
        usage.append((folder_usage(folders["gradio"]), folder_usage(folders["outputs"])))
    assert usage[-1][0] == usage[1][0], usage  # Gradio's folder: the same files and bytes as after two requests
    assert max(outputs[1] for _, outputs in usage) <= (OUTPUT_MAX_MB + 4) << 20  # the limit plus one request
    assert len(list(folders["outputs"].iterdir())) < 8  # 16 requests made 16 folders
    time.sleep(OUTPUT_TTL + 1)
    client.predict(photo, api_name="/remove_background")
    assert len(list(folders["outputs"].iterdir())) == 1  # only the newest request's


def test_sigterm_stops_the_server_and_its_temp_files_go(server, client, folders):
    """docker, systemd and Spaces stop a server with SIGTERM (the last test here: it stops the
    module's server). It exits 0 within seconds, the uploads and results Gradio kept are gone, and
    so is the example photos' folder. Only Gradio's copies of the examples stay: named by their
    contents' hash, a restart reuses them."""
    client.predict(handle_file(str(folders["files"] / "good.png")), api_name="/remove_background")
    assert "good.png" in {path.name for path in folders["gradio"].rglob("*")}
    assert len(list(folders["tmp"].glob("segkit-examples-*"))) == 1
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0
    left = {path.name for path in folders["gradio"].rglob("*") if path.is_file()}
    assert left <= {"astronaut.jpg", "chelsea.jpg", "coffee.jpg"}, left
    assert not list(folders["tmp"].glob("segkit-examples-*"))
