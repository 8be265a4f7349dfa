-- Mounted into the postgres container's /docker-entrypoint-initdb.d by docker-compose.yml:
-- runs once, when the data volume is first initialised. One database per service
-- (notification has none). The migrator creates any that are missing as well, so
-- this only saves it the work; the tables come from database/migrations.
CREATE DATABASE checkout_order;
CREATE DATABASE checkout_payment;
CREATE DATABASE checkout_inventory;
