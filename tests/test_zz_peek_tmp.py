import json


def test_peek(api, world):
    o = world.user("a1.officer")
    c = api.case(o)
    api.step(c["id"], o, "start_investigation")
    api.step(
        c["id"], o, "notify", {"facts": "f", "reasons_and_basis": "r", "hearing_requested": False}
    )
    r = api.step(
        c["id"], o, "submit_decision", {"penalty": "fine", "penalty_detail": "x"}, "请审核"
    )
    print(r.status_code, r.headers.get("ETag"), json.dumps(r.get_json(), ensure_ascii=False))
    a = api.pending_approval(c["id"], world.user("a1.legal"))
    print(json.dumps(a, ensure_ascii=False))
    r = api.decide(a["id"], world.user("a1.legal"))
    print(r.status_code, json.dumps(r.get_json(), ensure_ascii=False)[:600])
    r = api.get(f"/api/v1/cases/{c['id']}/events", o)
    print(json.dumps(r.get_json(), ensure_ascii=False))
    r = api.post(
        f"/api/v1/cases/{c['id']}/transitions",
        o,
        headers={"If-Match": '"x"'},
        json={"action": "close"},
    )
    print(r.status_code, r.get_json())
    r = api.get(f"/api/v1/cases/{c['id']}/persons", o)
    print(r.status_code, r.get_json())
