# One image for the web app and the scheduler (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY web ./web
COPY bpmn ./bpmn
RUN pip install --no-cache-dir ".[prod]"
ENV SAMFLYT_DATABASE_URL=postgresql://samflyt:samflyt@postgres:5432/samflyt
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "web.wsgi:app"]
