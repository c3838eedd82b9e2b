# One image for every amber-relay role: `serve` (API + stream) and `worker`.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY amber_relay ./amber_relay
COPY broadcaster ./broadcaster
COPY workers ./workers
COPY clients ./clients
RUN pip install . && useradd --system --uid 10001 amber
USER amber
# Bind all interfaces inside the container; publish ports with compose.
ENV AMBER_HOST=0.0.0.0
EXPOSE 8000 8001
ENTRYPOINT ["amber-relay"]
CMD ["serve"]
