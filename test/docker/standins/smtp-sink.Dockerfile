# Stand-in for axllent/mailpit: an SMTP server on 1025 that accepts every message and prints it
# to its log (Debian's aiosmtpd). No web UI on 8025.
ARG BASE
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-aiosmtpd \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
USER nobody
EXPOSE 1025
CMD ["python3", "-m", "aiosmtpd", "--nosetuid", "--listen", "0.0.0.0:1025", "--class", "aiosmtpd.handlers.Debugging", "stdout"]
