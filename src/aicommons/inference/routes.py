"""The route table of the inference API. Mounted by ``aicommons.app.create_app``:

    service = build_inference_service(settings, HubModelSource(...))
    routes += inference_routes(service)        # and await service.close() on shutdown
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from aicommons.errors import HubError

from . import speech
from .errors import InvalidRequest
from .http_util import no_model_advice, openai_error, parse_json_object, path_repo_id, read_body, tgi_error
from .metrics import CONTENT_TYPE
from .routes_admin import AdminRoutes, require_admin
from .routes_hf import HFRoutes
from .routes_openai import OpenAIRoutes


def inference_routes(service) -> list[BaseRoute]:
    if not service.settings.enabled:
        return []
    oa = OpenAIRoutes(service)
    hf = HFRoutes(service)
    admin = AdminRoutes(service)

    async def model_chat(request: Request):
        # InferenceClient(model="http://hub/models/ns/name").chat_completion(...) lands here; the
        # path names the model, whatever the body's "model" says (the client sends a placeholder).
        return await oa.chat_completions(request, fixed_model=path_repo_id(request))

    async def metrics(request: Request):
        # Administrators only: the series are labelled by model, private ones included, with their
        # usage. Prometheus scrapes with an administrator's token (``authorization`` in its config).
        try:
            require_admin(request, "the metrics")
        except HubError as exc:
            return tgi_error(exc)
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    async def no_model(request: Request):
        # InferenceClient(base_url=f"{hub}/v1").text_classification(...) and the other task methods
        # post to the base URL itself: say what to do instead of the web UI's 403 page for "/v1".
        return openai_error(InvalidRequest(no_model_advice(request, f"{request.method} /v1 names no model"),
                                           param="model", status=404))

    async def not_served(request: Request):
        # The openai client's other APIs (client.responses, images, audio.speech, moderations,
        # files...): an OpenAI error naming what is served, not the web UI's plain-text 405.
        return openai_error(InvalidRequest(
            f"{request.method} {request.url.path} is not served by this hub; its OpenAI routes are {served}",
            status=404))

    async def root(request: Request):
        # InferenceClient(base_url=<hub>) with no model: its task methods post to the hub's root (a
        # plain-text 405 before). A body that is a chat completion naming its model ("messages" and
        # "model": what the openai client or a TGI-style caller would send) is answered as
        # /v1/chat/completions answers it, access rules included; anything else is TGI's flat error
        # (the shape InferenceClient shows) saying how to name a model.
        try:
            raw = await read_body(request)
        except HubError as exc:
            return tgi_error(exc)
        try:
            body = parse_json_object(raw)
        except InvalidRequest:
            body = {}
        if isinstance(body.get("model"), str) and "messages" in body:
            return await oa.chat_completions(request, body=body)
        return tgi_error(InvalidRequest(no_model_advice(request, "POST / names no model"), param="model",
                                        status=404))

    async def tasks(request: Request):
        return await oa.task_catalog(request)

    async def transcriptions(request: Request):
        return await speech.openai_transcriptions(service, request)

    model = "/models/{ns}/{name}"
    routes = [
        Route("/api/tasks", tasks, methods=["GET"]),
        Route("/", root, methods=["POST"]),
        Route("/v1", no_model, methods=["POST"]),
        Route("/v1/models", oa.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", oa.retrieve_model, methods=["GET"]),
        Route("/v1/chat/completions", oa.chat_completions, methods=["POST"]),
        Route("/v1/completions", oa.completions, methods=["POST"]),
        Route("/v1/embeddings", oa.embeddings, methods=["POST"]),
        Route("/v1/rerank", oa.rerank, methods=["POST"]),
        Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
        Route(model, hf.task, methods=["POST"]),
        Route(model + "/pipeline/{task}", hf.task, methods=["POST"]),
        Route(model + "/v1/chat/completions", model_chat, methods=["POST"]),
        Route(model + "/generate", hf.generate, methods=["POST"]),
        Route(model + "/generate_stream", hf.generate_stream, methods=["POST"]),
        Route(model + "/info", hf.info, methods=["GET"]),
        Route(model + "/health", hf.health, methods=["GET"]),
        Route("/models/loaded", admin.loaded, methods=["GET"]),
        Route(model + "/load", admin.load, methods=["POST"]),
        Route(model + "/unload", admin.unload, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    # What the catch-all's error lists: the table's own /v1/ routes, so the two never disagree.
    served = ", ".join(r.path for r in routes if r.path.startswith("/v1/") and "{" not in r.path)
    return [*routes, Route("/v1/{rest:path}", not_served, methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])]
