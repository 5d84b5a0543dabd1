// Opens the link from a Tessera email in headless Chromium with Playwright and uses the page as
// a person would. Prints one JSON line per step ({step, status, url, text, ...}); the Rust test
// (tests/api/email_link_pages.rs) decides what is right.
//
//   node email_link_pages.cjs verify LINK
//       open the confirmation link, press Confirm
//   node email_link_pages.cjs reset LINK PASSWORD...
//       open the reset link, submit each password (typed twice) in turn, then open the link
//       again
//
// Console errors (a Content-Security-Policy violation among them) are printed as a step too,
// but for the line each non-2xx answer leaves.

const { chromium } = require("playwright-core");

const [action, link, ...passwords] = process.argv.slice(2);
const TIMEOUT = 15000;

function report(step, answer) {
    process.stdout.write(JSON.stringify({ step, ...answer }) + "\n");
}

// What the page at hand shows, with the status it was answered with.
async function shown(page, response) {
    return {
        status: response.status(),
        url: page.url(),
        text: (await page.locator("body").innerText()).trim(),
        forms: await page.locator("form").count(),
        errors: await page.locator(".error").allInnerTexts(),
    };
}

// Presses `button` and waits for the page its form posts to.
async function submit(page, button) {
    const posted = page.waitForResponse((r) => r.request().method() === "POST");
    await page.locator(button).click();
    const response = await posted;
    await page.waitForLoadState();
    return shown(page, response);
}

async function main() {
    const browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
        args: ["--no-sandbox", "--disable-gpu"],
    });
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on("console", (message) => {
        // A page answered 400 or 404 on purpose is logged too; that is no complaint.
        const status = message.text().startsWith("Failed to load resource: the server responded");
        if (message.type() === "error" && !status) {
            report("console error", { text: message.text() });
        }
    });
    page.on("pageerror", (error) => report("console error", { text: error.message }));

    report("open", await shown(page, await page.goto(link)));
    if (action === "verify") {
        report("confirm", await submit(page, "#confirm"));
    } else if (action === "reset") {
        for (const password of passwords) {
            await page.locator("#new_password1").fill(password);
            await page.locator("#new_password2").fill(password);
            report(`submit ${password}`, await submit(page, "#change"));
        }
        report("open again", await shown(page, await page.goto(link)));
    } else {
        throw new Error(`unknown action ${action}`);
    }
    await browser.close();
}

main().catch((error) => {
    process.stderr.write(`email_link_pages.cjs failed: ${error.stack || error}\n`);
    process.exit(1);
});
