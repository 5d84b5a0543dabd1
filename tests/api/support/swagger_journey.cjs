// Drives Swagger UI (`/docs`) in headless Chromium with Playwright, as a newcomer would: each
// step expands an operation, presses "Try it out", types the body, presses "Execute" and reads
// the answer the page shows. It prints one JSON line per step ({step, status, body}); the Rust
// test (tests/api/docs_page.rs) decides what is right.
//
//   node swagger_journey.cjs BASE_URL MODE EMAIL PASSWORD NEW_PASSWORD
//
// MODE is token, jwt or session: it says what to paste into "Authorize" (nothing in session
// mode: the browser holds the cookies and the page copies the CSRF cookie into its header).

const { chromium } = require("playwright-core");

const [base, mode, email, password, newPassword] = process.argv.slice(2);
const STEP_TIMEOUT = 15000;

function report(step, answer) {
    process.stdout.write(JSON.stringify({ step, ...answer }) + "\n");
}

// Runs operation `id` (in tag `tag`) from the page, with `body` as its JSON request body.
async function execute(page, tag, id, body) {
    const block = page.locator(`#operations-${tag}-${id}`);
    if (!(await block.locator(".opblock-body").isVisible())) {
        await block.locator(".opblock-summary").first().click();
    }
    const tryOut = block.locator("button.try-out__btn");
    if ((await tryOut.textContent()).trim() === "Try it out") {
        await tryOut.click();
    }
    if (body !== undefined) {
        await block.locator("textarea.body-param__text").fill(JSON.stringify(body));
    }
    const clear = block.locator("button.btn-clear");
    if (await clear.count()) {
        await clear.click();
    }
    await block.locator("button.execute").click();
    const live = block.locator(".live-responses-table");
    await live.waitFor({ timeout: STEP_TIMEOUT });
    const statusText = await live.locator("tbody .response-col_status").first().textContent();
    const code = live.locator(".response-col_description .highlight-code .microlight");
    const text = (await code.count()) ? (await code.first().textContent()).trim() : "";
    let parsed = null;
    try {
        parsed = text === "" ? null : JSON.parse(text);
    } catch (_) {
        parsed = text;
    }
    return { status: parseInt(statusText.trim(), 10), body: parsed };
}

// Pastes `value` into the "Authorize" dialog (the first scheme's field) and closes it.
async function authorize(page, value) {
    await page.locator(".auth-wrapper button.authorize").click();
    const dialog = page.locator(".modal-ux");
    await dialog.locator("input").first().fill(value);
    await dialog.locator(".auth-btn-wrapper button.authorize").first().click();
    await dialog.locator("button.btn-done, button.close-modal").first().click();
}

async function main() {
    const browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
        args: ["--no-sandbox", "--disable-gpu"],
    });
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT);
    page.on("console", (message) => {
        if (message.type() === "error") {
            process.stderr.write(`console: ${message.text()}\n`);
        }
    });
    page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));
    page.on("response", (response) => {
        if (response.status() >= 400) {
            process.stderr.write(`${response.status()} ${response.url()}\n`);
        }
    });
    await page.goto(base + "/");
    report("title", { status: 200, body: await page.title() });
    await page.locator("#operations-Auth-login").waitFor();

    const credential = (answer) => (mode === "token" ? answer.body.key : answer.body.access);

    report("register", await execute(page, "Registration", "register", {
        email, password1: password, password2: password,
    }));
    const login = await execute(page, "Auth", "login", { email, password });
    report("login", login);
    if (mode !== "session") {
        await authorize(page, credential(login));
    }
    report("user", await execute(page, "User", "getUser"));
    // What was pasted into "Authorize" survives a reload (persistAuthorization).
    await page.reload();
    await page.locator("#operations-User-getUser").waitFor();
    report("user after reload", await execute(page, "User", "getUser"));
    report("patch", await execute(page, "User", "partialUpdateUser", { first_name: "Ada" }));
    report("password change", await execute(page, "Password", "changePassword", {
        new_password1: newPassword, new_password2: newPassword,
    }));
    const logoutBody = mode === "jwt" ? { refresh: login.body.refresh } : undefined;
    report("logout", await execute(page, "Auth", "logout", logoutBody));
    report("user after logout", await execute(page, "User", "getUser"));
    await browser.close();
}

main().catch((error) => {
    process.stderr.write(`journey failed: ${error.stack || error}\n`);
    process.exit(1);
});
