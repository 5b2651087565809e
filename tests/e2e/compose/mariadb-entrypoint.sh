#!/bin/sh
# Stand-in for the official mysql image's entrypoint on netdiag-mariadb:dev: on first start,
# create MYSQL_DATABASE and MYSQL_USER (password from MYSQL_PASSWORD_FILE) with the server not
# listening on the network, as the official image does; then run the server for real.
set -eu
mkdir -p /run/mysqld
chown mysql /run/mysqld
if [ ! -e /var/lib/mysql/.ndtest-initialised ]; then
  mariadbd --user=mysql --skip-networking --socket=/run/mysqld/init.sock &
  until mariadb-admin --socket=/run/mysqld/init.sock ping >/dev/null 2>&1; do sleep 0.2; done
  {
    printf "CREATE DATABASE IF NOT EXISTS \`%s\`;\n" "$MYSQL_DATABASE"
    printf "CREATE TABLE \`%s\`.todo_items (id varchar(36), name varchar(255), completed boolean);\n" "$MYSQL_DATABASE"
    printf "CREATE USER '%s'@'%%' IDENTIFIED BY '%s';\n" "$MYSQL_USER" "$(cat "$MYSQL_PASSWORD_FILE")"
    printf "GRANT ALL ON \`%s\`.* TO '%s'@'%%';\n" "$MYSQL_DATABASE" "$MYSQL_USER"
  } | mariadb --socket=/run/mysqld/init.sock
  mariadb-admin --socket=/run/mysqld/init.sock shutdown
  wait
  touch /var/lib/mysql/.ndtest-initialised
fi
exec mariadbd --user=mysql --bind-address=0.0.0.0
