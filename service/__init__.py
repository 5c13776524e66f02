"""The textclf HTTP service: `create_app(Settings(model_path=...))`, or `textclf serve DIR`.

Layout follows the FastAPI full-stack template: `settings` (environment), `app` (factory and
lifespan), `routes` (thin handlers), `deps` (Annotated dependencies), `errors` (typed errors to
JSON in one place), `inference` (model holder and micro-batcher), `metrics` (Prometheus).
"""
