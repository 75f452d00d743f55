"""The floor under scripts/request_cost.py's figures: a bare Flask app with one route, what Flask,
Werkzeug and Gunicorn cost per request before this service does anything.

`POST /embeddings` reads the body and answers a fixed JSON body; `GET /health` answers "ok" (for
start-up polling). No hooks, no validation, no model, no logging, no metrics. For measurements only:

    .venv/bin/python scripts/request_cost.py --bare                 # in process, one WSGI call per request
    .venv/bin/python scripts/request_cost.py --bare --gunicorn      # under make run's Gunicorn layout
"""

from flask import Flask, Response, request

app = Flask("bare")


@app.post("/embeddings")
def embeddings() -> Response:
    request.get_data()
    return Response(b'{"object":"list","data":[]}', mimetype="application/json")


@app.get("/health")
def health() -> str:
    return "ok"
