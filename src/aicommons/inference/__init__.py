"""Inference on hosted models: OpenAI, TGI and HF-task APIs over transformers engines.

Importing this package imports no torch/transformers: engines load them on a model's first use.
Entry points for the app factory: ``build_inference_service`` and ``inference_routes``.
"""

from __future__ import annotations


def build_inference_service(settings, model_source, inference_settings=None):
    from .service import build_inference_service as build

    return build(settings, model_source, inference_settings)


def inference_routes(service):
    from .routes import inference_routes as routes

    return routes(service)


__all__ = ["build_inference_service", "inference_routes"]
