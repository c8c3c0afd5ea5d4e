# voice-campaign-runner as a container image: `runner` is the entrypoint.
#   docker build -t voice-campaign-runner .
#   docker run --rm -v "$PWD:/work" voice-campaign-runner validate
# As GitLab CI's `image:`, clear the entrypoint so that the job's shell runs:
#   image: {name: registry.example.com/voice-campaign-runner:0.1.0, entrypoint: [""]}
# The delivery receipts receiver (README "Delivery receipts"), behind a TLS proxy:
#   docker run -e RUNNER_RECEIPTS_TOKEN -e RUNNER_STATE -p 127.0.0.1:8090:8090 \
#     voice-campaign-runner receipts serve --host 0.0.0.0 --project KEY
# The base is pinned to a patch release and a Debian release; bump both on purpose.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runner ./runner
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /dist /dist
# The postgres and receipts extras are in: the state can live in PostgreSQL, and the same image
# runs the receipts receiver (`receipts serve`, port 8090).
# git and curl are for the GitLab recipes (examples/ci/), which run in this image: git keeps the
# runner-state branch, curl posts the plan on the merge request.
# DL3013 wants pinned versions: this wheel is the build's own file, pinned by being it. DL3008
# too: the Debian release is pinned by the base tag; within it, updates are security fixes.
# hadolint ignore=DL3008,DL3013
RUN apt-get update \
    && apt-get install -y --no-install-recommends git curl \
    && rm -rf /var/lib/apt/lists/* \
    && wheel="$(find /dist -name 'voice_campaign_runner-*.whl')" \
    && pip install --no-cache-dir "${wheel}[postgres,receipts]" \
    && rm -rf /dist \
    && useradd --create-home --uid 10001 --user-group runner
USER 10001:10001
WORKDIR /work
EXPOSE 8090
ENTRYPOINT ["runner"]
CMD ["--help"]
