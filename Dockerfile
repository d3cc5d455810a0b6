# One image for the web app and the scheduler (see docker-compose.yml).
FROM python:3.11-slim
# WeasyPrint (award letters and reports as PDF) needs Pango and HarfBuzz; fonts with æøå for the letters
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY web ./web
COPY community ./community
COPY bpmn ./bpmn
RUN pip install --no-cache-dir ".[prod]"
ENV SAMFLYT_DATABASE_URL=postgresql://samflyt:samflyt@postgres:5432/samflyt
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "web.wsgi:app"]
