# Stand-in for rabbitmq:4-management-alpine: Debian's RabbitMQ 3.10 with the management plugin.
# What differs from 4.x: quorum queues have no default delivery limit (4.x sets 20), and classic
# queue mirroring still exists; docker-compose.yml uses neither difference.
ARG BASE
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && rabbitmq-plugins enable --offline rabbitmq_management >/dev/null \
    && printf 'loopback_users = none\nlisteners.tcp.default = 5672\nmanagement.tcp.port = 15672\n' >/etc/rabbitmq/rabbitmq.conf \
    && chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /etc/rabbitmq /var/log/rabbitmq
# Logs to stdout, as the official image does.
ENV RABBITMQ_LOGS=- HOME=/var/lib/rabbitmq
USER rabbitmq
EXPOSE 5672 15672
CMD ["rabbitmq-server"]
