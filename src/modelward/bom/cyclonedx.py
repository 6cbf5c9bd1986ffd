"""CycloneDX 1.6 ML-BOM for a model folder or file.

Built with cyclonedx-python-lib (components, hashes, properties, pedigree, JSON output and
schema validation); the library has no ``modelCard`` yet, so that one object is added to
its JSON output by hand and the result is validated against the bundled 1.6 schema.

The BOM has one ``machine-learning-model`` component for the model, with one ``file``
sub-component per file (SHA-256, detected format), a model card (architecture, family,
parameter count and dtypes from tensor headers), the scan verdict as ``modelward:scan:*``
properties, and the lineage record, when there is one, as ``pedigree.ancestors``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelward import __version__
from modelward.bom.modelcard import ModelFacts, gather_facts
from modelward.errors import BackendUnavailableError, FormatError, VerificationError
from modelward.results import ScanReport
from modelward.signing.envelope import read_bundle
from modelward.signing.lineage import LINEAGE_PREDICATE
from modelward.signing.manifest import Manifest, Serialization, build_manifest
from modelward.signing.sign import own_paths, sidecar, signature_path_for

__all__ = ["build_bom"]


def _lib() -> Any:
    try:
        import cyclonedx.model as model
        import cyclonedx.model.bom as bom
        import cyclonedx.model.component as component
        import cyclonedx.output.json as output
        import cyclonedx.schema as schema
        import cyclonedx.validation.json as validation
    except ImportError as err:
        raise BackendUnavailableError("modelward bom needs cyclonedx-python-lib",
                                      hint="pip install 'modelward[bom]'") from err
    return model, bom, component, output, schema, validation


def _model_card(facts: ModelFacts) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if facts.family:
        params["architectureFamily"] = facts.family
    if facts.architecture:
        params["modelArchitecture"] = facts.architecture
    props = [{"name": f"modelward:config:{k}", "value": v} for k, v in sorted(facts.config.items())]
    if facts.parameters is not None:
        props.append({"name": "modelward:parameter-count", "value": str(facts.parameters)})
        props.append({"name": "modelward:tensor-count", "value": str(facts.tensors)})
        if facts.formats:
            props.append({"name": "modelward:tensor-formats",
                          "value": ",".join(sorted(facts.formats))})
    if facts.dtypes:
        props.append({"name": "modelward:tensor-dtypes", "value": ",".join(sorted(facts.dtypes))})
    if facts.config_dtype:
        props.append({"name": "modelward:config-dtype", "value": facts.config_dtype})
    card: dict[str, Any] = {}
    if params:
        card["modelParameters"] = params
    if props:
        card["properties"] = props
    return card


def _lineage(model: Path, signature: Path) -> Mapping[str, Any] | None:
    record = sidecar(signature, "lineage")
    if not record.exists():
        return None
    try:
        statement = read_bundle(record).statement()
    except VerificationError:
        return None
    if statement.get("predicateType") != LINEAGE_PREDICATE:
        return None
    predicate = statement.get("predicate")
    return predicate if isinstance(predicate, Mapping) else None


def build_bom(model: Path, report: ScanReport | None = None, *,
              workers: int | None = None) -> str:
    """Return a validated CycloneDX 1.6 JSON ML-BOM for `model`.

    Args:
        model: model folder or file.
        report: a scan of the model; its verdict and per-file formats are recorded.
        workers: hashing threads.

    Raises:
        BackendUnavailableError: cyclonedx-python-lib is not installed.
        InputError: the model cannot be hashed.
        FormatError: the produced document failed schema validation (a bug).
    """
    lib_model, lib_bom, lib_comp, lib_out, lib_schema, lib_val = _lib()
    signature = signature_path_for(model)
    manifest: Manifest = build_manifest(model, Serialization(method="files"),
                                        extra_ignores=own_paths(model, signature),
                                        workers=workers)
    formats = {}
    if report is not None:
        for result in report.files:
            formats[result.path] = result.format
    Prop, HashType, HashAlg = lib_model.Property, lib_model.HashType, lib_model.HashAlgorithm
    files = []
    for resource in manifest.resources:
        name = model.name if resource.name == "." else resource.name
        fmt = formats.get(name) or formats.get(resource.name)
        files.append(lib_comp.Component(
            name=name, type=lib_comp.ComponentType.FILE, bom_ref=f"file:{name}",
            hashes=[HashType(alg=HashAlg.SHA_256, content=resource.digest.hex())],
            properties=[Prop(name="modelward:format", value=fmt)] if fmt else None,
        ))
    props = [Prop(name="modelward:root-digest", value=f"sha256:{manifest.root_digest}")]
    if signature.exists():
        props.append(Prop(name="modelward:signature", value=signature.name))
    if report is not None:
        verdict = report.verdict
        props += [
            Prop(name="modelward:scan:verdict",
                 value="clean" if report.exit_code() == 0 else "not-clean"),
            Prop(name="modelward:scan:worst-severity",
                 value=verdict.label if verdict is not None else "none"),
            Prop(name="modelward:scan:complete", value=str(report.is_complete).lower()),
            Prop(name="modelward:scan:policy-digest", value=report.policy.digest()),
            Prop(name="modelward:scan:version", value=report.version),
        ]
        props += [Prop(name=f"modelward:scan:findings:{s.label}", value=str(n))
                  for s, n in report.counts().items()]
    pedigree = None
    lineage = _lineage(model, signature)
    if lineage is not None:
        source = lineage.get("source") or {}
        converter = lineage.get("converter") or {}
        ancestor_props = [Prop(name="modelward:root-digest",
                               value=f"sha256:{source.get('root_digest')}")]
        if converter.get("name"):
            ancestor_props.append(Prop(name="modelward:converter", value=str(converter["name"])))
        for key, value in sorted((converter.get("settings") or {}).items()):
            ancestor_props.append(Prop(name=f"modelward:converter:{key}", value=str(value)))
        pedigree = lib_comp.Pedigree(
            ancestors=[lib_comp.Component(
                name=str(source.get("name", "source")),
                type=lib_comp.ComponentType.MACHINE_LEARNING_MODEL,
                bom_ref=f"ancestor:{source.get('root_digest')}", properties=ancestor_props)],
            notes="from the modelward lineage record (model.lineage.sig); "
                  "check it with `modelward verify --lineage`",
        )
    root = lib_comp.Component(
        name=manifest.model_name, type=lib_comp.ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref="model", properties=props, components=files, pedigree=pedigree,
    )
    document = lib_bom.Bom(components=[root])
    document.metadata.component = None
    text = lib_out.JsonV1Dot6(document).output_as_string()
    data = json.loads(text)
    card = _model_card(gather_facts(model, [r.name for r in manifest.resources]))
    for component in data.get("components", []):
        if component.get("bom-ref") == "model" and card:
            component["modelCard"] = card
    data.setdefault("metadata", {})["tools"] = {"components": [
        {"type": "application", "name": "modelward", "version": __version__}]}
    text = json.dumps(data, indent=2)
    error = lib_val.JsonStrictValidator(lib_schema.SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise FormatError(f"generated ML-BOM does not validate: {error}")
    return text + "\n"
