#!/usr/bin/env python3
"""Writes a `git fast-import` stream of a Rails-like repository for bench/compat.sh: a root
commit tagged `bench-base` holding FILES Ruby files (default 3,000: models, controllers, jobs and
services that read columns, sessions, enqueue jobs and link to routes), config/routes.rb and
config/flags.yml; then COMMITS commits (default 500) on `main`, each editing one to three files.
About one commit in ten adds a migration (mostly safe: nullable columns, concurrent indexes, new
tables; a few unsafe: a dropped column the code reads, a rename, a NOT NULL without default);
others change a job's `perform`, add a route, rename a session key or flip a flag. Deterministic.
Usage: generate.py [FILES [COMMITS]] > stream"""

import random
import sys

FILES = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
COMMITS = int(sys.argv[2]) if len(sys.argv) > 2 else 500
rng = random.Random(11)
out = sys.stdout.buffer
when = 1_700_000_000
mark = 0

KINDS = ["model", "controller", "job", "service"]
COLUMNS = ["email", "name", "state", "amount", "token", "locale", "expires_at", "notes"]


def camel(snake):
    return "".join(part.capitalize() for part in snake.split("_"))


def model(n):
    cols = rng.sample(COLUMNS, 3)
    body = "\n".join(
        f"  def {c}_label\n    \"#{{{c}}} for #{{id}}\"\n  end\n" for c in cols
    )
    return (f"app/models/thing{n}.rb",
            f"class Thing{n} < ApplicationRecord\n  belongs_to :owner\n  validates :{cols[0]}, presence: true\n\n{body}end\n")


def controller(n):
    key = rng.choice(["step", "flow", "return_to", "locale"])
    return (f"app/controllers/things{n}_controller.rb",
            f"class Things{n}Controller < ApplicationController\n"
            f"  def show\n    @thing = Thing{n}.find(params[:id])\n    @step = session[:{key}]\n"
            f"    session[:{key}] = @thing.id\n  end\n\n"
            f"  def update\n    @thing = Thing{n}.find(params[:id])\n    @thing.update!(name: params[:name])\n"
            f"    Thing{n}Job.perform_later(@thing.id, \"update\")\n    redirect_to thing{n}_path(@thing)\n  end\nend\n")


def job(n, extra=""):
    return (f"app/jobs/thing{n}_job.rb",
            f"class Thing{n}Job < ApplicationJob\n  queue_as :default\n\n"
            f"  def perform(thing_id, reason = \"update\"{extra})\n    thing = Thing{n}.find(thing_id)\n"
            f"    Rails.logger.info(\"#{{reason}} #{{thing.state}}\")\n  end\nend\n")


def service(n):
    return (f"app/services/thing{n}_report.rb",
            f"class Thing{n}Report\n  def initialize(scope)\n    @scope = scope\n  end\n\n"
            f"  def rows\n    @scope.where(state: \"open\").pluck(:amount, :locale)\n  end\n\n"
            f"  def sql\n    \"SELECT amount, locale FROM thing{n}s WHERE state = 'open'\"\n  end\nend\n")


def routes(extra=()):
    lines = [f"  resources :thing{n}s" for n in range(FILES // 4)]
    lines += list(extra)
    return "Rails.application.routes.draw do\n" + "\n".join(lines) + "\nend\n"


FLAGS = {"new_checkout": "false", "page_size": "20", "fast_search": "false"}


def flags():
    return "defaults:\n" + "".join(f"  {k}: {v}\n" for k, v in FLAGS.items())


def write_commit(files, message, tag=None):
    global mark, when
    mark += 1
    when += 600
    msg = message.encode()
    out.write(f"commit refs/heads/main\nmark :{mark}\n".encode())
    out.write(f"author Ada <ada@example.com> {when} +0000\n".encode())
    out.write(f"committer Ada <ada@example.com> {when} +0000\n".encode())
    out.write(f"data {len(msg)}\n".encode() + msg + b"\n")
    if mark > 1:
        out.write(f"from :{mark - 1}\n".encode())
    for path, text in files:
        data = text.encode()
        out.write(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
    out.write(b"\n")
    if tag:
        out.write(f"reset refs/tags/{tag}\nfrom :{mark}\n\n".encode())


def migration(index):
    table = f"thing{rng.randrange(FILES // 4)}s"
    roll = rng.random()
    if roll < 0.35:
        body = f"    add_column :{table}, :extra{index}, :string"
    elif roll < 0.6:
        body = (f"    add_index :{table}, :state, algorithm: :concurrently")
        return (f"class Migration{index} < ActiveRecord::Migration[7.1]\n  disable_ddl_transaction!\n\n"
                f"  def change\n{body}\n  end\nend\n")
    elif roll < 0.8:
        body = f"    create_table :widgets{index} do |t|\n      t.string :name, null: false\n    end"
    elif roll < 0.88:
        body = f"    remove_column :{table}, :notes, :text"
    elif roll < 0.95:
        body = f"    rename_column :{table}, :token, :secret_token"
    else:
        body = f"    add_column :{table}, :tier, :integer, null: false"
    return f"class Migration{index} < ActiveRecord::Migration[7.1]\n  def change\n{body}\n  end\nend\n"


makers = [model, controller, job, service]
base_files = []
for n in range(FILES // 4):
    for make in makers:
        base_files.append(make(n))
base_files.append(("config/routes.rb", routes()))
base_files.append(("config/flags.yml", flags()))
write_commit(base_files, "the application", tag="bench-base")

extra_routes = []
for index in range(COMMITS):
    files = []
    roll = rng.random()
    n = rng.randrange(FILES // 4)
    if roll < 0.10:
        files.append((f"db/migrate/2026{index:010d}_migration{index}.rb", migration(index)))
    elif roll < 0.14:
        files.append(job(n, ", priority" if rng.random() < 0.2 else ", priority = :normal"))
    elif roll < 0.17:
        extra_routes.append(f"  get \"/reports/r{index}\", to: \"reports#r{index}\", as: :report{index}")
        files.append(("config/routes.rb", routes(extra_routes)))
        if rng.random() < 0.3:
            files.append((f"app/views/reports/r{index}.html.erb",
                          f"<%= link_to \"Report\", report{index}_path %>\n"))
    elif roll < 0.19:
        flag = rng.choice(list(FLAGS))
        FLAGS[flag] = "true" if FLAGS[flag] == "false" else "false"
        files.append(("config/flags.yml", flags()))
    elif roll < 0.21:
        path, text = controller(n)
        files.append((path, text.replace("@step = session[:", f"@step = session[:wizard{index}] || session[:", 1)
                      if rng.random() < 0.5 else text.replace("session[:", f"session[:wizard{index}_", 1)))
    for _ in range(rng.choice([1, 1, 2, 3])):
        make = rng.choice(makers)
        path, text = make(rng.randrange(FILES // 4))
        files.append((path, text.replace("end\n", f"  # touched in change {index}\nend\n", 1)))
    write_commit(files, f"change {index}")
