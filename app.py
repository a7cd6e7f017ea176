"""The evalhub leaderboard: `streamlit run app.py` from the repository (or `evalhub app`, bound to 127.0.0.1).

The script itself ships inside the package (evalhub/app/main.py) so that an installed evalhub can run it
without this repository; this file runs it afresh on every Streamlit rerun.
"""

import runpy

from evalhub.resources import app_script

runpy.run_path(str(app_script()), run_name="__main__")
