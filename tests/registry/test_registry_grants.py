"""Read grants on private models, over HTTP and the CLI, on SQLite and PostgreSQL.

One push serves the whole story (to keep the registry tests fast): without a grant a
reader gets 404 everywhere (never 403: the model's existence does not leak); with one it
lists, searches, opens the pages and pulls; only the owner or an admin manages grants;
revoking takes effect on the next request; all of it is audited.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from registry_support import Live, clean_model

from modelward.cli import main
from modelward.errors import RegistryError
from modelward.registry.client import RegistryClient


def _page_status(live: Live, path: str, token: str) -> int:
    request = urllib.request.Request(live.url + path,
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _hidden(client: RegistryClient, live: Live, token: str, tmp: Path) -> None:
    """Everything about the private model ``team/secret`` answers 404 to `client`."""
    assert [m["name"] for m in client.models()] == ["open"]
    assert client.models("secret") == []
    for call in (lambda: client.model("team/secret"),
                 lambda: client.version("team/secret", "1"),
                 lambda: client.pull("team/secret", "1", tmp),
                 lambda: client._open("GET", "/api/v1/models/team/secret/versions/1/files/"
                                      "config.json")):
        with pytest.raises(RegistryError, match="HTTP 404"):
            call()
    assert not tmp.exists()
    assert _page_status(live, "/models/team/secret", token) == 404


def test_grants_on_private_model(live: Live, tokens: dict[str, str], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    reg = live.registry
    owner = RegistryClient(live.url, tokens["publisher"])
    owner.push(clean_model(tmp_path / "m"), "team/secret", "1", visibility="private",
               description="internal")
    assert owner.wait("team/secret", "1")["state"] == "published"
    owner.push(clean_model(tmp_path / "p"), "open", "1")
    reader = RegistryClient(live.url, tokens["reader"])
    _hidden(reader, live, tokens["reader"], tmp_path / "out0")

    # someone who cannot see the model cannot learn it exists by trying to grant
    mallory_token = reg.create_token("mallory", "publisher")
    mallory = RegistryClient(live.url, mallory_token)
    for call in (lambda: mallory.grant("team/secret", "mallory"),
                 lambda: mallory.revoke_grant("team/secret", "reader-user"),
                 lambda: mallory.grants("team/secret"),
                 lambda: reader.grant("team/secret", "reader-user"),
                 lambda: mallory.grant("team/nothing", "mallory")):
        with pytest.raises(RegistryError, match="HTTP 404"):
            call()
    # the owner grants; bad requests are refused clearly
    with pytest.raises(RegistryError, match=r"HTTP 404.*no token"):
        owner.grant("team/secret", "nobody-at-all")
    with pytest.raises(RegistryError, match=r"HTTP 400.*public"):
        owner.grant("open", "reader-user")
    with pytest.raises(RegistryError, match="HTTP 400"):
        owner.grant("team/secret", "publisher-user")  # the owner itself
    with pytest.raises(RegistryError, match="HTTP 400"):
        owner._json("POST", "/api/v1/grants", {"model": "team/secret", "principal": 7})
    with pytest.raises(RegistryError, match="HTTP 401"):
        RegistryClient(live.url, "mwr_forged").grant("team/secret", "reader-user")
    assert owner.grant("team/secret", "reader-user") == {
        "model": "team/secret", "principal": "reader-user", "granted": True, "already": False}
    assert owner.grant("team/secret", "reader-user")["already"] is True

    # the grantee lists, searches, opens the pages and pulls; it cannot manage grants
    assert [m["name"] for m in reader.models()] == ["open", "team/secret"]
    assert [m["name"] for m in reader.models("intern")] == ["team/secret"]
    assert reader.model("team/secret")["owner"] == "publisher-user"
    assert _page_status(live, "/models/team/secret", tokens["reader"]) == 200
    assert reader.pull("team/secret", "1", tmp_path / "out1")["files"] == 3
    with pytest.raises(RegistryError, match="HTTP 403"):
        reader.grant("team/secret", "mallory")
    with pytest.raises(RegistryError, match="HTTP 403"):  # read access only: no push
        RegistryClient(live.url, reg.create_token("reader-user", "publisher")).push(
            clean_model(tmp_path / "r"), "team/secret", "2")
    # other principals still see nothing
    _hidden(mallory, live, mallory_token, tmp_path / "out2")
    assert [g["principal"] for g in owner.grants("team/secret")] == ["reader-user"]

    # the CLI: an admin grants and lists, the owner revokes
    url = ["--registry", live.url]
    assert main(["registry", "grant", "team/secret", "mallory", *url,
                 "--token", tokens["admin"]]) == 0
    assert "mallory can read team/secret" in capsys.readouterr().out
    assert [m["name"] for m in mallory.models()] == ["open", "team/secret"]
    assert main(["registry", "grants", "team/secret", *url, "--token", tokens["admin"]]) == 0
    out = capsys.readouterr().out
    assert "mallory\tgranted by admin-user" in out and "reader-user\tgranted by" in out
    assert main(["registry", "revoke-grant", "team/secret", "reader-user", *url,
                 "--token", tokens["publisher"]]) == 0
    assert main(["registry", "revoke-grant", "team/secret", "reader-user", *url,
                 "--token", tokens["publisher"]]) == 2
    assert "404" in capsys.readouterr().err
    assert main(["registry", "grant", "team/secret", "reader-user", *url,
                 "--token", mallory_token]) == 2  # a grantee, not the owner
    assert "403" in capsys.readouterr().err
    _hidden(reader, live, tokens["reader"], tmp_path / "out3")

    audit = reg.audit_log()
    grants = [(e["action"], e["principal"], e["detail"]["principal"]) for e in audit
              if e["action"] in ("model.grant", "model.revoke-grant")]
    assert grants[::-1] == [
        ("model.grant", "publisher-user", "reader-user"),
        ("model.grant", "publisher-user", "reader-user"),
        ("model.grant", "admin-user", "mallory"),
        ("model.revoke-grant", "publisher-user", "reader-user")]
    assert all(e["target"] == "team/secret" for e in audit if e["action"].startswith("model."))
    assert reg.verify_audit_chain()
