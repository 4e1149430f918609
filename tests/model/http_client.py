"""The REST API as the model test calls it: one request per connection, HTTP Basic as a user,
the answer as (status, text, JSON or None). A server that does not answer is a finding, not a
hang: every exchange is bounded."""

import base64
import http.client
import json
import xml.etree.ElementTree as ET
import xmlrpc.client

TIMEOUT = 60


class Answer:
    def __init__(self, method, path, status, text):
        self.request = f"{method} {path}"
        self.status = status
        self.text = text
        try:
            self.json = json.loads(text) if text else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"{self.request} -> {self.status} {self.text[:160]}"


class Api:
    def __init__(self, server, passwords):
        self.server = server
        self.passwords = passwords

    def call(self, user, method, path, body=None):
        conn = http.client.HTTPConnection(self.server.addr, timeout=TIMEOUT)
        auth = base64.b64encode(f"{user}:{self.passwords[user]}".encode()).decode()
        headers = {"Authorization": "Basic " + auth, "Connection": "close"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, "/api/v1" + path, body=data, headers=headers)
            response = conn.getresponse()
            return Answer(method, path, response.status, response.read().decode("utf-8", "replace"))
        finally:
            conn.close()


def one_users(endpoint, passwords):
    """Each user's id, primary group and groups, as OpenNebula (onesim) knows them."""
    users = {}
    for name, password in passwords.items():
        ok, xml, _code = xmlrpc.client.ServerProxy(endpoint).one.user.info(f"{name}:{password}", -1)[:3]
        if not ok:
            raise RuntimeError(f"one.user.info for {name}: {xml}")
        root = ET.fromstring(xml)
        groups = [int(g.text) for g in root.findall("GROUPS/ID")]
        gid = int(root.findtext("GID"))
        users[name] = {"uid": int(root.findtext("ID")), "gid": gid, "groups": groups or [gid]}
    return users
