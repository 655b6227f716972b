"""A dataset's Croissant description (JSON-LD, https://mlcommons.org/croissant/1.0), as the Hub and
datasets-server give it: the converted Parquet ref as the ``repo`` file object, one file set and
one record set per config (a ``split`` field read from the file's path, then one field per column
with the Croissant type of its ``datasets`` feature), and a record set listing each config's splits.

It is made from what the conversion job recorded (features, splits), so it always describes the
converted files it points at."""

from __future__ import annotations

import re
from typing import Any

CONTEXT: dict[str, Any] = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/", "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"}, "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty", "rai": "http://mlcommons.org/croissant/RAI/",
    "samplingRate": "cr:samplingRate",
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract", "field": "cr:field",
    "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet", "format": "cr:format",
    "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key",
    "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path", "recordSet": "cr:recordSet",
    "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated", "replace": "cr:replace",
    "sc": "https://schema.org/", "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField",
    "transform": "cr:transform",
}
DTYPES = {"string": "sc:Text", "large_string": "sc:Text", "bool": "sc:Boolean", "float16": "cr:Float16",
          "float32": "cr:Float32", "float64": "cr:Float64", "int8": "cr:Int8", "int16": "cr:Int16", "int32": "cr:Int32",
          "int64": "cr:Int64", "uint8": "cr:UInt8", "uint16": "cr:UInt16", "uint32": "cr:UInt32",
          "uint64": "cr:UInt64", "date32": "sc:Date", "date64": "sc:Date"}


def _name(text: str) -> str:
    """An ``@id``-safe name (Croissant ids are paths: no slashes or spaces of their own)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text) or "_"


def _data_type(feature: Any) -> str | None:
    if not isinstance(feature, dict):
        return None
    kind = feature.get("_type")
    if kind == "Value":
        dtype = str(feature.get("dtype"))
        return DTYPES.get(dtype) or ("sc:Date" if dtype.startswith("timestamp") else None)
    if kind == "ClassLabel":
        return "cr:Int64"
    return None


def _field(record: str, name: str, feature: Any, file_set: str, path: list[str]) -> dict[str, Any] | None:
    """One column's field (or sub-field), or None for a feature Croissant is not given here."""
    field_id = f"{record}/{'/'.join(_name(p) for p in path)}"
    source = {"fileSet": {"@id": file_set}, "extract": {"column": path[0]}}
    if len(path) > 1:
        source["transform"] = {"jsonPath": ".".join(path[1:])}
    repeated = False
    if isinstance(feature, dict) and feature.get("_type") in ("List", "Sequence", "LargeList"):
        feature, repeated = feature.get("feature"), True
    if isinstance(feature, list) and len(feature) == 1:
        feature, repeated = feature[0], True
    data_type = _data_type(feature)
    body: dict[str, Any] = {"@type": "cr:Field", "@id": field_id, "name": field_id, "description": f"Column '{name}'"}
    if data_type is not None:
        body.update(dataType=data_type, source=source)
    elif isinstance(feature, dict) and "_type" not in feature:  # a struct: its sub-fields
        subs = [_field(record, sub, sub_feature, file_set, [*path, sub]) for sub, sub_feature in feature.items()]
        body["subField"] = [s for s in subs if s is not None]
        if not body["subField"]:
            return None
    else:
        return None
    if repeated:
        body["repeated"] = True
    return body


def croissant(dataset: str, hub_url: str, configs: dict[str, Any], card: dict[str, Any] | None) -> dict[str, Any]:
    """The Croissant JSON-LD of ``dataset`` (``user/name``) from the conversion's ``configs``."""
    card = card or {}
    repo_url = f"{hub_url}/datasets/{dataset}"
    distribution: list[dict[str, Any]] = [{
        "@type": "cr:FileObject", "@id": "repo", "name": "repo",
        "description": "The Hugging Face git repository.",
        "contentUrl": f"{repo_url}/tree/refs%2Fconvert%2Fparquet", "encodingFormat": "git+https",
        "sha256": "https://github.com/mlcommons/croissant/issues/80",
    }]
    record_sets: list[dict[str, Any]] = []
    for config, found in configs.items():
        info = found.get("info") or {}
        file_set = f"parquet-files-for-config-{_name(config)}"
        record = _name(config)
        splits_id = f"{record}_splits"
        splits = list(dict.fromkeys(item["split"] for item in found.get("files", [])))
        distribution.append({"@type": "cr:FileSet", "@id": file_set, "name": file_set,
                             "description": "The underlying Parquet files as converted by Hugging Face (see: "
                                            "https://huggingface.co/docs/dataset-viewer/parquet).",
                             "containedIn": {"@id": "repo"}, "encodingFormat": "application/x-parquet",
                             "includes": f"{config}/*/*.parquet"})
        record_sets.append({
            "@type": "cr:RecordSet", "dataType": "cr:Split", "key": {"@id": f"{splits_id}/split_name"},
            "@id": splits_id, "name": splits_id, "description": f"Splits for the {config} config.",
            "field": [{"@type": "cr:Field", "@id": f"{splits_id}/split_name", "name": f"{splits_id}/split_name",
                       "description": "The name of the split.", "dataType": "sc:Text"}],
            "data": [{f"{splits_id}/split_name": split} for split in splits],
        })
        fields: list[dict[str, Any]] = [{
            "@type": "cr:Field", "@id": f"{record}/split", "name": f"{record}/split",
            "description": "Split to which the example belongs to.", "dataType": "sc:Text",
            "source": {"fileSet": {"@id": file_set}, "extract": {"fileProperty": "fullpath"},
                       "transform": {"regex": f"{re.escape(config)}/(?:partial-)?({'|'.join(map(re.escape, splits))})"
                                              "/.+parquet$"}},
            "references": {"field": {"@id": f"{splits_id}/split_name"}},
        }]
        for name, feature in (info.get("features") or {}).items():
            field = _field(record, name, feature, file_set, [name])
            if field is not None:
                fields.append(field)
        record_sets.append({"@type": "cr:RecordSet", "@id": record, "name": record,
                            "description": f"{dataset} - '{config}' subset", "field": fields})
    license_ = card.get("license")
    body: dict[str, Any] = {
        "@context": CONTEXT, "@type": "sc:Dataset", "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": _name(dataset.split("/")[-1]), "description": str(card.get("description") or f"{dataset} dataset"),
        "alternateName": [dataset], "url": repo_url, "distribution": distribution, "recordSet": record_sets,
        "creator": {"@type": "Person", "name": dataset.split("/")[0], "url": f"{hub_url}/{dataset.split('/')[0]}"},
    }
    if isinstance(license_, str):
        body["license"] = license_
    elif isinstance(license_, list) and license_:
        body["license"] = [str(x) for x in license_]
    return body
