"""The vendor's JSON examples (``shared/seeds/*.txt``) as test data, and a scripted fake service.

The examples live in ``tests/data/seed_examples.json``, extracted once from the
vendor documents by running this module::

    python tests/seeds.py ../shared/seeds

Each example keeps the vendor's placeholders (``"{customId}"``); ``fill``
replaces them with the concrete values in ``PLACEHOLDERS``, the same values
everywhere, so a request built from those values must equal the filled
example key for key.

``ScriptedService`` is an ``httpx.MockTransport`` handler: it records every
request and answers like the service (creating, listing and returning jobs,
paging models), unless a scripted step for that action says otherwise.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import sys
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx

import mediax_async
from mediax_async import MediaXClient, RetryPolicy

DATA_FILE = Path(__file__).parent / "data" / "seed_examples.json"

PLACEHOLDERS = {
    "secretId": "AKIDexampleSecretId0001",
    "secretKey": "sk-EXAMPLE-3f9d2c7a1b8e4f60",
    "customId": "order-2024-0042",
    "callback": "https://hooks.example.com/mediax/done",
    "url": "https://cdn.example.com/media/input.wav",
    "contentId": "repo-1250000000",
    "outputPrefix": "take1_",
    "destination": "/music/out",
    "id": "13f342e4-6866-450e-b44e-3151431c578b",
}
"""The value each vendor placeholder stands for, in every example."""

SECRET_ID = PLACEHOLDERS["secretId"]
SECRET_KEY = PLACEHOLDERS["secretKey"]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(value: Any) -> Any:
    """A deep copy of ``value`` with every ``{placeholder}`` string filled in."""
    if isinstance(value, dict):
        return {key: fill(item) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item) for item in value]
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: PLACEHOLDERS[m[1]], value)
    return value


@dataclass(frozen=True)
class SeedExample:
    """One JSON example of a vendor document."""

    seed: str
    """The vendor document's file name."""
    name: str
    """``"<Action> request"`` or ``"<Action> response"``, and ``" (train)"`` etc. for variants."""
    action: str
    kind: str
    """``"request"`` or ``"response"``."""
    variant: str | None
    raw: dict[str, Any]
    """The example as the vendor wrote it, placeholders included."""

    @property
    def id(self) -> str:
        """A short test id: ``000 CreateJob request``."""
        return f"{self.seed[:3]} {self.name}"

    @property
    def data(self) -> dict[str, Any]:
        """The example with its placeholders filled in (a fresh copy each time)."""
        filled: dict[str, Any] = fill(self.raw)
        return filled

    @property
    def payload(self) -> Any:
        """The ``<action>Request`` or ``<action>Response`` object, filled in."""
        key = self.action[:1].lower() + self.action[1:] + self.kind.capitalize()
        return self.data[key]

    @property
    def jobs(self) -> list[dict[str, Any]]:
        """The job objects of a response example (one for Create/GetJob, all for ListJobs)."""
        payload = self.payload
        if "job" in payload:
            return [payload["job"]]
        return list(payload.get("jobs", []))


def load_examples() -> list[SeedExample]:
    """Every example in ``tests/data/seed_examples.json``."""
    document = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    return [
        SeedExample(
            seed=item["seed"],
            name=item["name"],
            action=item["action"],
            kind=item["kind"],
            variant=item["variant"],
            raw=item["json"],
        )
        for item in document["examples"]
    ]


EXAMPLES = load_examples() if __name__ != "__main__" else []


def examples(kind: str | None = None, action: str | None = None) -> list[SeedExample]:
    """The examples of one kind and/or action."""
    return [
        e
        for e in EXAMPLES
        if (kind is None or e.kind == kind) and (action is None or e.action == action)
    ]


def example(seed_prefix: str, name: str) -> SeedExample:
    """The one example of seed ``seed_prefix`` (``"002"``) named ``name``."""
    (found,) = [e for e in EXAMPLES if e.seed.startswith(seed_prefix) and e.name == name]
    return found


# -- extraction (run once, by hand) ------------------------------------------------


def _variant(document: dict[str, Any]) -> str | None:
    """``generate`` or ``train`` for a singing cloning example, else None."""
    text = json.dumps(document)
    match = re.search(r'"singingCloning": \{"type": (\d)', text)
    if match is None:
        return None
    return {"1": "generate", "2": "train"}[match[1]]


def extract(seed_dir: Path) -> list[dict[str, Any]]:
    """Every JSON example in the vendor documents under ``seed_dir``, labelled."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    for path in sorted(seed_dir.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        position = 0
        for match in re.finditer(r"(?m)^[ \t]*\{[ \t]*$", text):
            if match.start() < position:
                continue
            document, end = decoder.raw_decode(text, match.end() - 1)
            position = end
            if "action" in document:
                action, kind = document["action"], "request"
            else:
                (key,) = [k for k in document if k.endswith("Response")]
                action, kind = key[:1].upper() + key[1 : -len("Response")], "response"
            variant = _variant(document)
            name = f"{action} {kind}" + (f" ({variant})" if variant else "")
            found.append(
                {
                    "seed": path.name,
                    "name": name,
                    "action": action,
                    "kind": kind,
                    "variant": variant,
                    "json": document,
                }
            )
    names = [(item["seed"], item["name"]) for item in found]
    assert len(names) == len(set(names)), "example labels must be unique"
    return found


def main(argv: list[str]) -> None:
    """Write ``tests/data/seed_examples.json`` from the vendor documents in ``argv[1]``."""
    seed_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).parents[2] / "shared" / "seeds"
    document = {
        "source": "shared/seeds/*.txt (vendor documents), extracted by tests/seeds.py",
        "examples": extract(seed_dir),
    }
    DATA_FILE.parent.mkdir(exist_ok=True)
    DATA_FILE.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {len(document['examples'])} examples to {DATA_FILE}")


# -- a scripted fake service ----------------------------------------------------------


@dataclass
class Sent:
    """One request the fake service received."""

    action: str
    url: httpx.URL
    body: dict[str, Any]
    headers: httpx.Headers

    @property
    def payload(self) -> dict[str, Any]:
        """The ``<action>Request`` object."""
        key = self.action[:1].lower() + self.action[1:] + "Request"
        value: dict[str, Any] = self.body[key]
        return value


@dataclass
class Ambiguous:
    """A step that does the action (creates the job) and then fails as ``outcome`` says."""

    outcome: Exception | httpx.Response | Callable[[Sent], httpx.Response]


@dataclass
class Slow:
    """A step that answers normally, but only after ``seconds``."""

    seconds: float


Step = httpx.Response | Exception | Ambiguous | Slow | Callable[[Sent], httpx.Response]


def answer(status: int = 200, body: Any = None, **headers: str) -> httpx.Response:
    """An HTTP answer with a JSON body (or raw bytes/str as given)."""
    if isinstance(body, (bytes, str)):
        return httpx.Response(status, content=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def job_answer(action: str, job: dict[str, Any], request_id: str = "req-1") -> httpx.Response:
    """A 200 answer carrying ``job`` under ``<action>Response.job``."""
    key = action[:1].lower() + action[1:] + "Response"
    return answer(200, {"requestId": request_id, key: {"job": job}})


@dataclass
class ScriptedService:
    """Answers MediaX requests like the service, unless a step is scripted for the action."""

    models: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    script: defaultdict[str, deque[Step]] = field(default_factory=lambda: defaultdict(deque))
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def then(self, action: str, *steps: Step) -> ScriptedService:
        """Script the next answers to ``action``, in order; afterwards it answers normally."""
        self.script[action].extend(steps)
        return self

    def actions(self) -> list[str]:
        """The action of every request received, in order."""
        return [s.action for s in self.sent]

    def add_job(self, job: dict[str, Any]) -> dict[str, Any]:
        """Store ``job`` as if the service had created it."""
        self.jobs[job["id"]] = job
        return job

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent = Sent(body.get("action", "?"), request.url, body, request.headers)
        self.sent.append(sent)
        steps = self.script.get(sent.action)
        step = steps.popleft() if steps else None
        if isinstance(step, httpx.Response):
            return step
        if isinstance(step, Exception):
            raise step
        if isinstance(step, Slow):
            await anyio.sleep(step.seconds)
        elif step is not None and not isinstance(step, Ambiguous):
            return step(sent)
        response = self.handle(sent)
        if isinstance(step, Ambiguous):
            if isinstance(step.outcome, Exception):
                raise step.outcome
            if isinstance(step.outcome, httpx.Response):
                return step.outcome
            return step.outcome(sent)
        return response

    def handle(self, sent: Sent) -> httpx.Response:
        """The service's normal answer to ``sent``."""
        request = sent.payload
        if sent.action == "CreateJob":
            number = next(self._ids)
            job: dict[str, Any] = {
                "id": f"job-{number:04d}",
                "state": 1,
                "customId": request.get("customId"),
                "inputs": request["inputs"],
                "outputs": request["outputs"],
                "timing": {"createdAt": str(1_700_000_000_000 + number), "startedAt": "0"},
            }
            job["timing"]["completedAt"] = "0"
            if "callback" in request:
                job["callback"] = request["callback"]
            self.add_job(job)
            return job_answer("CreateJob", job, f"req-create-{number}")
        if sent.action == "GetJob":
            found = self.jobs.get(request["id"])
            if found is None:
                return answer(404, {"error": {"code": "JobNotFound", "message": "no such job"}})
            return job_answer("GetJob", found)
        if sent.action == "ListJobs":
            jobs = [j for j in self.jobs.values() if j.get("customId") == request["customId"]]
            return answer(
                200,
                {"requestId": "req-list", "listJobsResponse": {"jobs": jobs, "total": len(jobs)}},
            )
        if sent.action == "ListModels":
            offset, limit = request["offset"], request["limit"]
            page = self.models[offset : offset + limit]
            return answer(
                200,
                {
                    "requestId": f"req-models-{offset}",
                    "listModelsResponse": {"total": len(self.models), "models": page},
                },
            )
        return answer(400, {"error": {"code": "InvalidAction", "message": sent.action}})


FAST_RETRIES = RetryPolicy(initial_delay=0)
"""The default number of retries, without waiting between them."""


@asynccontextmanager
async def client_for(
    service: ScriptedService | Callable[[httpx.Request], Any], **options: Any
) -> AsyncIterator[MediaXClient]:
    """A ``MediaXClient`` whose requests go to ``service`` (no network)."""
    options.setdefault("retry_policy", FAST_RETRIES)
    secret_id = options.pop("secret_id", SECRET_ID)
    secret_key = options.pop("secret_key", SECRET_KEY)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(service)) as http,
        mediax_async.MediaXClient(secret_id, secret_key, http_client=http, **options) as client,
    ):
        yield client


def copy_job(job: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of a wire job with some top-level keys changed."""
    result = copy.deepcopy(job)
    result.update(changes)
    return result


if __name__ == "__main__":
    main(sys.argv)
