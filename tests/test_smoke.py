def test_officer_files_and_accepts_a_case(api, world):
    officer = world.user("a1.officer")
    case = api.case(officer)
    assert case["status"] == "accepted"
    assert case["number"].endswith("-000001") or case["number"]
    response = api.step(case["id"], officer, "start_investigation")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["case"]["status"] == "investigating"
