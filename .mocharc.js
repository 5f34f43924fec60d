// Mocha's settings. A test file named on the command line runs alone
// (`npx mocha dist/test/export.test.js`); with none named, every test runs.
const named = process.argv.slice(2).some((arg) => /\.test\.js$/.test(arg));
module.exports = {
  ...(named ? {} : { spec: ["dist/test/**/*.test.js"] }),
  timeout: 300000,
  reporter: "test/summary-reporter.js",
};
