import { mount } from "svelte";
import App from "./App.svelte";
import Board from "./screens/Board.svelte";
import "./app.css";

// The same bundle serves the main window and the waiting-room board (#board).
const target = document.getElementById("app")!;
export default location.hash === "#board" ? mount(Board, { target }) : mount(App, { target });
